#!/usr/bin/env python
"""The example site's commands: ``runserver`` (the service's environment) and
``migrate --settings=django_site.settings_migrate`` (the migrations' environment)."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
