# SPDX-License-Identifier: GPL-3.0-or-later
"""The labels a compose lock gives every service, and the compose host reads back from its containers.

A module of its own so that the host side (``_compose_state``) does not import the lock renderer
and, with it, the release manifest code.
"""

RELEASE_LABEL = "stella.release.id"
COMPONENT_LABEL = "stella.component.name"
DIGEST_LABEL = "stella.digest"
CHANNEL_LABEL = "stella.channel"
SERVICE_HASH_LABEL = "stella.service.hash"
