"""Pure planning core: geometry, site, paths, routes, energy, deconfliction, assignment.

No asyncio, no sockets, no clocks: every function is a function of its inputs.
"""
