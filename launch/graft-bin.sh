# Sourced by the table scripts: sets GRAFT, the graft binary they run. Unless GRAFT is given, installs the system
# packages and builds graft in release first.
if [ -z "${GRAFT:-}" ]; then
    bash launch/setup.sh >&2
    swift build -c release --product graft >&2
    GRAFT=$(swift build -c release --show-bin-path)/graft
fi
