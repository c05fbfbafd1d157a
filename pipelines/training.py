"""The training pipeline (KFP v2): data in, a gated, registered, exported challenger out.

ingest -> validate -> redact -> training set (Feast, point in time) -> train -> evaluate ->
gate -> [passed] register -> export -> mark challenger.

One definition, three ways to run it (``shipyard pipeline …``): locally with ``kfp.local``,
compiled to IR YAML, or submitted to a KFP cluster.
"""

from kfp import dsl

from pipelines import components as c

NAME = "shipyard-training"


@dsl.pipeline(name=NAME, description="Train, evaluate, gate, register and export the fraud model.")
def training_pipeline(
    raw_uri: str,
    owner: str,
    team: str,
    on_call: str = "",
    model_name: str = "fraud-scoring",
    feature_service: str = "fraud_scoring_v2",
    as_of: str = "",
    n_estimators: int = 200,
    learning_rate: float = 0.05,
    num_leaves: int = 31,
    min_child_samples: int = 50,
    max_auc_drop: float = 0.01,
    min_slice_auc: float = 0.6,
    max_slice_auc_drop: float = 0.05,
    experiment: str = "fraud-scoring",
):
    raw = dsl.importer(artifact_uri=raw_uri, artifact_class=dsl.Dataset, reimport=False)
    ingested = c.ingest(raw=raw.output)
    checked = c.validate(raw=raw.output, as_of=as_of).after(ingested)
    clean = c.redact(raw=raw.output, as_of=as_of).after(checked)
    training = c.training_set(clean=clean.outputs["clean"], feature_service=feature_service)
    trained = c.train(
        training=training.outputs["training"],
        n_estimators=n_estimators,
        learning_rate=learning_rate,
        num_leaves=num_leaves,
        min_child_samples=min_child_samples,
        experiment=experiment,
        pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )
    evaluated = c.evaluate(
        training=training.outputs["training"],
        model=trained.outputs["model"],
        run_id=trained.outputs["Output"],
        model_name=model_name,
    )
    decision = c.gate(
        evaluation=evaluated.outputs["Output"],
        max_auc_drop=max_auc_drop,
        min_slice_auc=min_slice_auc,
        max_slice_auc_drop=max_slice_auc_drop,
        run_id=trained.outputs["Output"],
    )
    with dsl.If(decision.output == "passed", name="gate-passed"):
        registered = c.register(
            run_id=trained.outputs["Output"],
            model_name=model_name,
            owner=owner,
            team=team,
            on_call=on_call,
            training=training.outputs["training"],
            evaluation=evaluated.outputs["Output"],
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        exported = c.export(
            model_name=model_name,
            version=registered.output,
            model=trained.outputs["model"],
            training=training.outputs["training"],
        )
        c.mark_challenger(
            model_name=model_name, version=registered.output, exported=exported.output
        )
