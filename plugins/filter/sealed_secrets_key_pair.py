# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.sealed_secrets_key_pair filter (documentation: sealed_secrets_key_pair.yml).

The logic and its unit tests live in module_utils/sealed_secrets_key.py; it never raises and never repeats the
private key, so no error message can carry it."""

from __future__ import annotations

from ansible_collections.infra.k3s.plugins.module_utils import sealed_secrets_key


def sealed_secrets_key_pair(key_pem, cert_pem, min_bits=sealed_secrets_key.MIN_BITS):
    return sealed_secrets_key.key_pair_info(key_pem, cert_pem, min_bits=int(min_bits))


class FilterModule(object):
    """infra.k3s.sealed_secrets_key_pair"""

    def filters(self):
        return {"sealed_secrets_key_pair": sealed_secrets_key_pair}
