"""odepipe's built-in plugins, one feature bundle per sub-package.

Each bundle is laid out like a third-party distribution (compare ``tests/example_plugin``): its
``__init__`` holds the hook implementations and registers components by reference
(``"module:Class"``), so nothing is imported until a recipe or command uses it; the modules
beside it use only odepipe's public API. Any bundle could be split out as its own package.
"""
