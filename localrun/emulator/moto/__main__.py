"""`python -m localrun.emulator.moto`: every probe's verdict on plain moto, as JSON."""

import json

from localrun.emulator.moto import run_probes

print(json.dumps(run_probes()))
