"""Never reached in a rehearsal: `getResolvedOptions` ends the run first."""


class Job:  # pragma: no cover - the rehearsal stops before a Job is made
    def __init__(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the deploy rehearsal does not run Glue's JVM side")
