# Shared by install.sh and install-centre.sh (sourced, not run): the copy of the code to /opt/playout and
# its venv, which a station and a centre on one machine share. Expects REPO, PREFIX, VENV and DRY_RUN.

# Never copied: the developer's venv and history, local data, build output (at the top of the repo) and
# caches (anywhere).
TOP_EXCLUDES=(.venv .git var build tests/artifacts)
ANY_EXCLUDES=(__pycache__ .pytest_cache .ruff_cache .hypothesis '*.egg-info')

say() { printf '==> %s\n' "$*"; }

# Run a command, or only show it with --dry-run.
run() {
    printf '+ %s\n' "$*"
    if [ "$DRY_RUN" = 0 ]; then
        "$@"
    fi
}

# The repository copied to $PREFIX, owned by root: read-only code.
install_code() {
    say "code: $REPO -> $PREFIX"
    if [ "$REPO" = "$PREFIX" ]; then
        echo "   already running from $PREFIX: nothing to copy"
        return
    fi
    run install -d -o root -g root -m 0755 "$PREFIX"
    if command -v rsync >/dev/null; then
        # --delete drops files removed upstream; excluded paths (the venv) are left alone.
        # A leading / anchors an rsync pattern at the top of the repository.
        run rsync -a --delete --chown=root:root "${TOP_EXCLUDES[@]/#/--exclude=/}" \
            "${ANY_EXCLUDES[@]/#/--exclude=}" "$REPO/" "$PREFIX/"
    else
        # No rsync: the same result with find + tar (clear everything but the venv, then copy).
        # tar names members ./path, so ./ anchors a pattern at the top.
        local excludes=("${TOP_EXCLUDES[@]/#/--exclude=./}" "${ANY_EXCLUDES[@]/#/--exclude=}")
        run find "$PREFIX" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
        printf '+ tar -C %s -c %s . | tar -C %s -x --no-same-owner\n' "$REPO" "${excludes[*]}" "$PREFIX"
        if [ "$DRY_RUN" = 0 ]; then
            tar -C "$REPO" -c "${excludes[@]}" . | tar -C "$PREFIX" -x --no-same-owner
        fi
    fi
}

# $VENV from requirements-runtime.lock (hashes checked), then playout itself, compiled in advance.
install_venv() {
    say "virtual environment $VENV from requirements-runtime.lock"
    if [ ! -x "$VENV/bin/python" ]; then
        run python3 -m venv "$VENV"
    fi
    # As the Makefile's setup does, but the run-time pins only (the same versions and hashes as
    # requirements.lock): no test runner, browser driver or linter on a station.
    run "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
        -r "$PREFIX/requirements-runtime.lock"
    run "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
        -e "$PREFIX"
    # The services cannot write under /opt (ProtectSystem=strict): compile the bytecode now.
    run "$VENV/bin/python" -m compileall -q "$PREFIX/playout" "$PREFIX/tts" "$PREFIX/gpio"
}
