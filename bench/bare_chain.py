"""The bare nameko chain intake_bench.py measures mallcare against: two nameko services
with nothing of mallcare's in them, each on its own store process.

- `BareFront`: POST /complaints does one insert_one (w=1, j=True) of the body into its
  store and dispatches one event (nameko's EventDispatcher: persistent, confirmed), then
  answers 201.
- `BareBack`: handles that event with one insert_one (w=1, j=True), from a quorum queue
  (the type of mallcare's event queues), and keeps in memory when each insert returned
  (time.time()), which GET /stored gives the bench after the run.

Run as `nameko run --config <yml> bare_chain:BareFront` (and BareBack) with this directory
on PYTHONPATH; the store is RAW_MONGO_URI, the database the service's name (raw_chain.Store,
as the soak's raw chain has it).
"""

import json
import time

from nameko.events import EventDispatcher
from nameko.web.handlers import http

from raw_chain import QuorumEventHandler, Store

EVENT = "complaint_registered"
STORED = {}  # seq -> time.time() when BareBack's insert returned (this process's)


class BareFront:
    name = "bare_front"
    db = Store()
    dispatch = EventDispatcher()

    @http("POST", "/complaints")
    def register(self, request):
        body = json.loads(request.get_data(as_text=True))
        self.db.complaints.insert_one({"_id": body["seq"], **body})
        self.dispatch(EVENT, {"seq": body["seq"]})
        return 201, json.dumps({"seq": body["seq"]})


class BareBack:
    name = "bare_back"
    db = Store()

    @QuorumEventHandler.decorator(BareFront.name, EVENT)
    def handle(self, payload):
        self.db.handled.insert_one({"_id": payload["seq"], "received_at": time.time()})
        STORED[payload["seq"]] = time.time()

    @http("GET", "/stored")
    def stored(self, request):
        return 200, json.dumps(STORED)
