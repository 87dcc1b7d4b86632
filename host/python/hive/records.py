"""Hive's request and response records, wherever the service's world puts
them: componentize-py names the module `types` when `hive:service` is the
only package with a `types` interface, and `hive_service_types` when
another (say `hive:events`) has one too."""

try:
    from wit_world.imports.types import Request, Response
except ImportError:
    from wit_world.imports.hive_service_types import Request, Response

__all__ = ["Request", "Response"]
