"""Stand-in for ansible-test's pip bootstrap script: ensurepip, then `pip install` of what it asked for.

get-pip.py takes the arguments of `pip install` plus its own --no-setuptools/--no-wheel flags
(which only mean "do not add those packages"), so those two are dropped here.
"""

import ensurepip
import os
import subprocess
import sys

# ansible-test runs this with a reduced environment; keep pip on the system's CA bundle.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
env = dict(os.environ)
if "PIP_CERT" not in env and os.path.exists(SYSTEM_CA_BUNDLE):
    env["PIP_CERT"] = SYSTEM_CA_BUNDLE

ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=env))
