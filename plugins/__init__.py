"""odepipe's built-in plugins. Each module registers through the public hooks only, exactly as a
third-party distribution would, so any of them could be split out on its own."""
