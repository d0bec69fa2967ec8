"""`fleetctl demo`: the whole system on one machine with nothing but `pip install`.

The bundled site's fleet on the built-in simulator, the in-process MQTT broker, SQLite in the
output folder and the real service (`fleetctl.service.Service`), fed a synthetic order stream through the
broker at a sped-up simulated clock; a live view while it runs, then KPIs, a JSON report and a map.

    options.py  what a run is asked to do (DemoOptions), checked
    fleet.py    which vehicles of the site fly, and a site folder with just those
    orders.py   the synthetic order stream (seeded Poisson arrivals over the site's drop points)
    backends.py the parts swapped for real ones on request: broker, store, simulator (or PX4)
    watch.py    what the demo sees: statuses and events from the broker, tracks sampled from the fleet
    live.py     the live view (rich), or plain progress lines when stdout is not a terminal
    report.py   KPIs, the JSON report, the KPI table and the map
    run.py      the run itself, start to end
"""

from fleetctl.demo.options import DemoOptions
from fleetctl.demo.run import DemoResult, run_demo

__all__ = ["DemoOptions", "DemoResult", "run_demo"]
