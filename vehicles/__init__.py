"""The MAVLink side: command and watch PX4 vehicles (drones and rovers) from one process."""
