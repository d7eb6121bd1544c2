# Sourced by the scripts in this folder: the Python test peers and tools (moto server, boto3,
# cargo-lambda, cfn-lint with SAM's translator), installed into .venv exactly as
# requirements-test.txt pins them: every package at its version, checked against its hashes,
# nothing else pulled in. The lock is made from requirements-test.in by scripts/lock-python.sh
# (README, "Development": moving the pins).
#
# `ensure_venv` makes .venv when it is missing and makes it anew when the lock changed since
# (a stamp of the lock's digest is kept in .venv), so a .venv never drifts from the lock.
ensure_venv() {
  local lock=requirements-test.txt stamp=.venv/requirements-test.sha256 digest
  digest=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
    return 0
  fi
  echo "installing the Python test peers into a fresh .venv, exactly as $lock pins them"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r "$lock"
  echo "$digest" >"$stamp"
}

# What the tests run with, in a few lines: the Python peers (and that .venv holds exactly the
# lock's pins), Chromium and ChromeDriver. CI prints it, so that a red run can be told from a
# peer that moved.
say_peers() {
  local lock=requirements-test.txt
  echo "python: $(.venv/bin/python --version 2>&1)"
  echo "python peers: $(.venv/bin/pip list --disable-pip-version-check --format=freeze 2>/dev/null \
    | grep -iE '^(moto|boto3|botocore|flask|werkzeug|cfn-lint|aws-sam-translator|cargo-lambda)==' | tr '\n' ' ')"
  local drift
  drift=$(diff <(grep -oiE '^[a-z0-9_.-]+==[^ ]+' "$lock" | tr 'A-Z_' 'a-z-' | sort) \
    <(.venv/bin/pip list --disable-pip-version-check --format=freeze 2>/dev/null \
      | grep -viE '^(pip|setuptools)==' | tr 'A-Z_' 'a-z-' | sort) || true)
  if [ -z "$drift" ]; then
    echo "python peers: .venv holds exactly the $(grep -cE '^[a-zA-Z0-9_.-]+==' "$lock") pins of $lock"
  else
    echo "python peers: .venv differs from $lock (< lock, > .venv):"
    echo "$drift"
  fi
  echo "cargo-lambda: $(.venv/bin/cargo-lambda lambda --version 2>&1 | head -1)"
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1) (Debian $(dpkg-query -W -f='${Version}' chromium 2>/dev/null))"
  echo "chromedriver: $(/usr/bin/chromedriver --version 2>&1 | head -1)"
}

# Debian's Chromium and its ChromeDriver, for the console's browser tests (tests/it/console.rs):
# installed with apt-get when absent (as root, or through sudo).
ensure_browser() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing chromium and chromium-driver (apt-get) for the console's browser tests"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
}
