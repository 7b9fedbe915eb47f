"""The library's facts: the engine table (engines.py), the reboot policy and its outcomes
(policy.py), the custom resource's names (contract.py), maintenance-window arithmetic
(window.py) and the finding shape of the audit and the guard, ASFF and OCSF (findings.py).

Stdlib only, and nothing else of the library: the construct, the Lambda handlers (it ships in
their asset) and the CLI import the same modules, so each fact is written once.
"""
