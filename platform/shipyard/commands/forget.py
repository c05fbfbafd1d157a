"""`shipyard forget`: erase one customer everywhere (right to be forgotten), and prove it."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shipyard.settings import load_settings

out = Console()
err = Console(stderr=True)


def forget_command(
    customer: Annotated[
        int, typer.Option("--customer", min=1, help="The customer id (customer_id) to erase.")
    ],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Change nothing: count what is left of the customer in each store."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Erase a customer from raw and offline data, the online store and audit payloads; tag
    the model versions trained on their data for retraining; record the erasure in the trail
    (<state>/erasures/trail.jsonl). Safe to run again, also after a crash: it resumes.

    Needs the stack running (MLflow, and Redis on the redis profile). Exit code 1 when
    --verify finds rows left.

    Examples:

    \b
      shipyard forget --customer 42
      shipyard forget --customer 42 --verify
    """
    from shipyard.governance.forget import Forgetter

    forgetter = Forgetter(load_settings(), progress=lambda line: err.print(line, highlight=False))
    if verify:
        left = forgetter.remaining(customer)
        if as_json:
            print(json.dumps({"customer": customer, "remaining": left}))
        else:
            out.print(_counts("rows of the customer left", left))
        if any(left.values()):
            raise typer.Exit(1)
        return
    report = forgetter.forget(customer)
    if as_json:
        print(json.dumps(asdict(report)))
        return
    if report.already_done:
        out.print(f"customer {customer} was already erased ({report.erasure_id}); nothing is left")
    else:
        how = "resumed and completed" if report.resumed else "completed"
        out.print(f"erasure {report.erasure_id} {how}")
        out.print(_counts("removed (this erasure)", report.removed))
    out.print(_counts("verification: rows of the customer left", report.remaining))
    if report.models:
        tagged = ", ".join(report.models)
        out.print(f"tagged retrain_required (trained on the customer's data): {tagged}")


def _counts(title: str, counts: dict[str, int]) -> Table:
    view = Table(title=title, box=None, padding=(0, 2), title_justify="left")
    view.add_column("store")
    view.add_column("rows", justify="right")
    for store, count in counts.items():
        view.add_row(store, f"{count:,}")
    return view
