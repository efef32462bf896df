"""Sandbox core: state, clock, middleware, control routes, server."""
