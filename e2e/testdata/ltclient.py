#!/usr/bin/python3
"""Minimal python3-libtorrent client driven by the seedpay e2e tests.

Runs one torrent (seeding or leeching) in a session with DHT, LSD, UPnP and
NAT-PMP off, and prints one JSON object per line on stdout:

  {"ev": "tracker_reply", "num_peers": N, "url": ...}
  {"ev": "tracker_error", "msg": ..., "failure_reason": ..., "error": ...,
   "url": ...}
  {"ev": "tracker_warning", "msg": ...}
  {"ev": "status", "state": ..., "progress": F, "total_done": N,
   "num_peers": N, "is_seeding": B}
  {"ev": "finished"}
  {"ev": "error", "msg": ...}

Every line also carries "t", the Unix time (float seconds) it was printed.

--set NAME=VALUE (repeatable) overrides one libtorrent setting, e.g.
--set min_announce_interval=1 (libtorrent waits at least 300 s between
announces otherwise, whatever interval the tracker asks for); VALUE is an
integer, true/false, or a string.

It runs until killed, or until --max-seconds elapsed (a safety net only;
the test kills it first).
"""
import argparse
import json
import sys
import time

import libtorrent as lt


def emit(**kw):
    kw["t"] = time.time()
    sys.stdout.write(json.dumps(kw, sort_keys=True) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--listen", required=True, help="IP:PORT to listen on")
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a libtorrent setting (repeatable)")
    args = ap.parse_args()

    settings = {
        "listen_interfaces": args.listen,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "allow_multiple_connections_per_ip": True,
        # Trackers here live on loopback under /announce/<passkey>; the SSRF
        # mitigation would refuse such URLs.
        "ssrf_mitigation": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.storage_notification,
    }
    for kv in args.set:
        name, sep, value = kv.partition("=")
        if not sep or not name:
            ap.error("--set wants NAME=VALUE, got %r" % kv)
        if value in ("true", "false"):
            settings[name] = value == "true"
        else:
            try:
                settings[name] = int(value)
            except ValueError:
                settings[name] = value
    ses = lt.session(settings)

    info = lt.torrent_info(args.torrent)
    atp = lt.add_torrent_params()
    atp.ti = info
    atp.save_path = args.save_path
    h = ses.add_torrent(atp)

    deadline = time.monotonic() + args.max_seconds
    next_status = 0.0
    finished = False
    while time.monotonic() < deadline:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert):
                emit(ev="tracker_reply", num_peers=a.num_peers, url=a.tracker_url())
            elif isinstance(a, lt.tracker_error_alert):
                emit(
                    ev="tracker_error",
                    msg=a.message(),
                    failure_reason=a.failure_reason(),
                    error=a.error.message(),
                    url=a.tracker_url(),
                )
            elif isinstance(a, lt.tracker_warning_alert):
                emit(ev="tracker_warning", msg=a.message())
            elif isinstance(a, lt.torrent_finished_alert):
                if not finished:
                    finished = True
                    emit(ev="finished")
            elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                emit(ev="error", msg=a.message())
        now = time.monotonic()
        if now >= next_status:
            next_status = now + 0.5
            st = h.status()
            emit(
                ev="status",
                state=str(st.state),
                progress=st.progress,
                total_done=st.total_done,
                num_peers=st.num_peers,
                is_seeding=st.is_seeding,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
