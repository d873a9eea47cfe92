# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dr_pick_backup filter (documentation: dr_pick_backup.yml). The newest Velero backup that holds a set of objects.

The logic and its unit tests live in module_utils/dr_plan.py and module_utils/label_selector.py; this file
only turns their errors into AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dr_plan
from ansible_collections.infra.k3s.plugins.module_utils.label_selector import SelectorError


def dr_pick_backup(backups, objects, name=None, phases=("Completed",), mode="all"):
    try:
        return dr_plan.pick_backup(backups, objects, name=name, phases=tuple(phases), mode=mode)
    except (SelectorError, ValueError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dr_pick_backup: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dr_pick_backup"""

    def filters(self):
        return {"dr_pick_backup": dr_pick_backup}
