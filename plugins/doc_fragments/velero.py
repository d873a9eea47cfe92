# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option every infra.k3s Velero module has (spec: module_utils/velero_bodies.py velero_argument_spec()),
on top of the Kubernetes connection (doc_fragments/kubernetes.py): use it as C(infra.k3s.velero)."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - Namespace Velero is installed in, where its objects live.
    type: str
    default: velero
"""
