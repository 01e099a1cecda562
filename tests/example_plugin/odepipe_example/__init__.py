"""odepipe-example: a third-party odepipe plugin, written only against odepipe's public API.

It provides a data source (``damped_oscillator``), a dynamics field (``damped_linear``), a
decoder (``student_t``) and a command (``odepipe oscillator``). The hooks live in
:mod:`odepipe_example.plugin`, which imports torch only when a hook is called.
"""
__version__ = "0.1.0"
