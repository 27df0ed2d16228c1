"""Deployments: one document in, one manager that runs it, one status keeper that records it.

`candidates` (gathering: I/O) and `plan` (deciding: pure) make the plan; `apply` changes the store and the
kernel; `outcome` says when a deployment is over; `manager` runs every document through them; `status`
alone writes deployment records; `model` holds the values that go in and come out.
"""
