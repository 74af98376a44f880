"""Stand-alone programs that run inside emulated hosts (network namespaces).

Each module is a script, run by the venv's python inside a host's namespace::

    python -m testbed.programs.forwarder --iface IF --stats FILE [--cost-us N] [--name NAME]
    python -m testbed.programs.probe send --dst IP --port P --rate PPS --duration S ...
    python -m testbed.programs.probe recv --port P --out FILE [--duration S]

They use the standard library only, so they start fast. Keep this package free of
imports: ``python -m testbed.programs.X`` imports it first.
"""
