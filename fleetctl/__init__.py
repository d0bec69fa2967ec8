"""fleetctl: ground control for mixed fleets of delivery drones and sidewalk robots."""

__version__ = "0.1.0"
