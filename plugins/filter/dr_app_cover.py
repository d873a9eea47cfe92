# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dr_app_cover filter (documentation: dr_app_cover.yml). What a backup must take to hold an application.

The logic and its unit tests live in module_utils/dr_plan.py; this file only turns its errors into
AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dr_plan


def dr_app_cover(found, namespace, selectors):
    try:
        return dr_plan.app_cover(found, namespace, selectors)
    except (ValueError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dr_app_cover: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dr_app_cover"""

    def filters(self):
        return {"dr_app_cover": dr_app_cover}
