"""The model card: what a reviewer, an auditor or an on-call engineer needs on one page."""

from __future__ import annotations

from shipyard.training.registry import Ownership

INTENDED_USE = (
    "Scores card transactions for fraud risk in real time, as one input to a decision that also "
    "involves rules and human review. Not for credit decisions or any use on other data."
)
LIMITS = (
    "Trained on the window below only; quality degrades under drift in amounts or category mix "
    "(monitored by PSI). Labels mature with a delay, so recent fraud is under-counted. Slices "
    "with few positives have unstable metrics."
)


def model_card(
    name: str, ownership: Ownership, manifest: dict, evaluation: dict, params: dict, code: str
) -> str:
    candidate = evaluation["candidate"]
    champion = evaluation.get("champion")
    lines = [
        f"# Model card: {name}",
        "",
        f"* owner: {ownership.owner} (team {ownership.team}"
        + (f", on call {ownership.on_call})" if ownership.on_call else ")"),
        f"* feature service: {manifest['feature_service']}",
        f"* data window: {manifest['event_time_range'][0]} .. {manifest['event_time_range'][1]}",
        f"* training set: {manifest['rows']:,} rows, {manifest['positives']:,} positive; "
        f"digest {manifest['digest']}",
        f"* code version: {code}",
        f"* hyper-parameters: {', '.join(f'{k}={v}' for k, v in sorted(params.items()))}",
        "",
        "## Holdout metrics (most recent 20% of the window)",
        "",
        "| metric | this model | champion |",
        "| --- | --- | --- |",
    ]
    for metric in ("roc_auc", "pr_auc", "brier", "expected_calibration_error"):
        theirs = f"{champion[metric]:.4f}" if champion else "none"
        lines.append(f"| {metric} | {candidate[metric]:.4f} | {theirs} |")
    lines += [
        "",
        "## Slices",
        "",
        "| slice | rows | positives | ROC-AUC |",
        "| --- | --- | --- | --- |",
    ]
    for column, values in candidate["slices"].items():
        for value, m in sorted(values.items()):
            auc = f"{m['roc_auc']:.4f}" if m["roc_auc"] is not None else "n/a"
            lines.append(f"| {column}={value} | {m['rows']:,} | {m['positives']:,} | {auc} |")
    lines += ["", "## Intended use", "", INTENDED_USE, "", "## Limits", "", LIMITS, ""]
    return "\n".join(lines)
