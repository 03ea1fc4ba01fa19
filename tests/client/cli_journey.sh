#!/usr/bin/env bash
# A new user's journey with the iotchat CLI, as a script would drive it. The test runner sets
# IOTCHAT (the binary), IOTCHAT_PROFILE (the server's profile) and two data directories.
set -euo pipefail

alice() { "$IOTCHAT" --data-dir "$ALICE_DIR" "$@"; }
bob() { "$IOTCHAT" --data-dir "$BOB_DIR" "$@"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

echo "$PASSWORD" | alice register alice --email alice@example.com --password-stdin
echo "$PASSWORD" | bob register bob --email bob@example.com --password-stdin
echo "$PASSWORD" | alice login alice --password-stdin
echo "$PASSWORD" | bob login bob --password-stdin
[ "$(alice --json whoami | python3 -c 'import json,sys; print(json.load(sys.stdin)["username"])')" = alice ] \
  || fail "whoami names alice"

created=$(alice create "Über Café 2020")
[ "$created" = "room/public/uber-cafe-2020" ] || fail "create prints the room name, got $created"

# A duplicate is a clear error with a non-zero exit.
if err=$(alice create "Uber cafe 2020" 2>&1); then fail "a duplicate room is refused"; fi
case "$err" in *"already exists"*) ;; *) fail "the duplicate error says why: $err" ;; esac

bob join uber-cafe-2020
bob rooms | grep -q '^\* room/public/uber-cafe-2020' || fail "bob's room list marks the followed room"

# Bob tails (JSON lines) while Alice sends.
bob --json tail room/public/uber-cafe-2020 --count 2 --timeout 30 \
  > "$WORK/tail.jsonl" 2> "$WORK/tail.log" &
tail_pid=$!
for _ in $(seq 1 300); do
  grep -q "online" "$WORK/tail.log" && break
  sleep 0.1
done
grep -q "online" "$WORK/tail.log" || fail "tail says when it is online"
alice send uber-cafe-2020 "hello bob"
alice send room/public/uber-cafe-2020 "it's <b>me</b>; DROP TABLE messages;--"
wait "$tail_pid" || fail "tail ends after two messages"
python3 - "$WORK/tail.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [l["text"] for l in lines] == ["hello bob", "it's <b>me</b>; DROP TABLE messages;--"], lines
assert all(l["author"] == "alice" and not l["own"] for l in lines), lines
PY

bob history uber-cafe-2020 --limit 10 | grep -q 'alice: hello bob' || fail "history shows the message"
[ "$(bob --json history uber-cafe-2020 | wc -l)" -eq 2 ] || fail "history has each message once"

# Bad input: clear errors on stderr, non-zero exits.
if err=$(alice send no-such-room "x" 2>&1); then fail "sending to a room not joined fails"; fi
case "$err" in *"Join room/public/no-such-room"*) ;; *) fail "it says to join first: $err" ;; esac
if alice join 'room/private/x' 2>/dev/null; then fail "a private room name is refused"; fi
if err=$(alice --json join nope 2>&1); then fail "joining a missing room fails"; fi
echo "$err" | python3 -c 'import json,sys; assert json.load(sys.stdin)["code"] == "not_found"'

bob leave uber-cafe-2020
bob rooms | grep -q '^  room/public/uber-cafe-2020' || fail "left rooms are no longer marked"

alice logout
if err=$(alice rooms 2>&1); then fail "logged out users cannot list rooms"; fi
case "$err" in *"not logged in"*) ;; *) fail "it says to log in: $err" ;; esac
echo "journey complete"
