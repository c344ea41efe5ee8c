"""What both faces share: the API (`web.api`) and the portal (`web.portal`) import these
modules, and these modules import neither face nor the CLI (tests/unit/test_web_imports.py)."""
