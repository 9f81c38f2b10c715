# hello-python: a sandcron job in Python (world sandcron:job/job), built by componentize-py.
#
# Shows the imports from Python: logs through `log`, reads the `greeting` key of the
# manifest's [config], counts its runs in per-job `state` (a decimal string under the key
# "runs") and reports "{greeting}, run #{n}". The payload "fail" takes the error path:
# raising Err(JobError_Retryable(...)) becomes job-error::retryable; the payload "raise"
# raises an uncaught ValueError, whose own message becomes the run's reason (the traceback
# is in the run's logs). The interpreter needs
# more than 16 MiB of memory: the manifest allows 64 MiB.
# Build: bash build.sh
import wit_world
from componentize_py_types import Err
from wit_world.imports import config, log, state
from wit_world.imports.log import Level
from wit_world.imports.types import JobError_Retryable, RunContext, RunOutput


class WitWorld(wit_world.WitWorld):
    def run(self, ctx: RunContext) -> RunOutput:
        log.log(Level.INFO, f"hello-python starting: attempt {ctx.attempt} ({ctx.trigger.name.lower()})", [])
        if ctx.payload == b"fail":
            log.log(Level.WARN, "payload asked for a failure", [])
            raise Err(JobError_Retryable("asked to fail"))
        if ctx.payload == b"raise":
            raise ValueError("bad input")
        greeting = config.get("greeting") or "hello"
        previous = state.get("runs")
        runs = (int(previous.decode()) if previous is not None else 0) + 1
        state.set("runs", str(runs).encode())
        log.log(Level.INFO, "counted this run", [("runs", str(runs))])
        return RunOutput(summary=f"{greeting}, run #{runs}")
