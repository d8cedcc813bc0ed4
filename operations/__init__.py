"""What `make verify` and `make status` run against a live stack: the marker's round trip (smoke), the
archive's completeness per partition, the buffers and the outage window. Deploy code never imports it."""
