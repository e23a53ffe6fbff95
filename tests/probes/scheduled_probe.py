"""A flow with nothing to do, deployed on a short schedule to prove schedules create runs."""

from prefect import flow


@flow(name="scheduled-probe")
def scheduled_probe() -> str:
    """Returns at once: the test only cares that the scheduler made the run and a worker ran it."""
    return "ran"
