"""``codecgen replay SPEC PCAP``: decode the TCP streams of a capture with a spec's codec.

``tcp`` reassembles the streams (scapy), ``codecgen.engines.Engine`` runs over each direction
(client->server as requests, server->client as responses) and ``cli`` prints one JSON line
per frame, a summary, and exits 1 at the first frame that fails.
"""
