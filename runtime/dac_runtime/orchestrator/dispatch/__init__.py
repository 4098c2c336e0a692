"""The dispatch path: a request read from Kafka or the API (``intake``, ``submit``, ``chains``) waits in
its persona's queue, is handed to an idle worker (``pool``, ``dispatcher``) connected over WebSocket
(``workers``), is held across a worker's disconnect (``leases``), and every frame it produces is fanned
out to the store, Kafka (``bus``) and live streams (``events``)."""
