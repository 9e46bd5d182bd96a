"""Never reached in a rehearsal: `getResolvedOptions` ends the run first."""


class GlueContext:  # pragma: no cover - the rehearsal stops before a GlueContext is made
    def __init__(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the deploy rehearsal does not run Glue's JVM side")
