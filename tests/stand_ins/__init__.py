"""Stand-ins with the interfaces of heavy GPU libraries, for tests on CPU without weights."""
