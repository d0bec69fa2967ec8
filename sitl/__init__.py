"""Simulation: a built-in PX4-compatible MAVLink vehicle simulator and a real PX4 SITL launcher.

A separate peer that only speaks MAVLink: it never imports `fleetctl` or `vehicles`.
"""
