"""IT security logs of the platform's own environment: authentication, application, firewall.

Staff accounts work office hours on weekdays. Planted: brute-force bursts from outside addresses
(many failures in minutes, sometimes ending in a success), and off-hours logins (01:00-05:00 local)
by accounts that never work then. Local time is Hong Kong (UTC+8); timestamps are UTC.
"""

from __future__ import annotations

from datetime import datetime, time

import numpy as np

from sciti.demo.entities import World
from sciti.demo.rng import stream
from sciti.demo.writers import Sinks

LABEL_HEADER = ["feed", "record_key", "sub_key", "pattern", "entity_id", "start", "end", "detail"]
APPS = ["clearance", "manifest", "risk", "cases", "intel", "reports"]
ACTIONS = ["view", "search", "update", "export", "approve"]
HKT = np.timedelta64(8 * 3600, "s")


def _ts(t: np.datetime64) -> str:
    return f"{np.datetime_as_string(t, unit='s')}Z"


def _ip(rng: np.random.Generator, internal: bool) -> str:
    if internal:
        return f"10.{rng.integers(10, 40)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
    return f"{rng.integers(11, 223)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"


def write_seclogs_day(world: World, day: int, sinks: Sinks) -> None:
    """One day of the three logs; days are independent random streams."""
    sc = world.scale
    rng = stream(world.seed, "seclogs", day)
    n_users = max(20, int(sc.persons) // 50)
    per_day = int(sc.security_events) // int(sc.days)
    midnight_local = (
        np.datetime64(datetime.combine(sc.start, time()), "s") + np.timedelta64(day * 86400, "s") - HKT
    )
    weekday = (np.datetime64(sc.start, "D") + np.timedelta64(day, "D")).astype(datetime).weekday() < 5
    auth, app = sinks.jsonl("seclogs/auth.jsonl"), sinks.jsonl("seclogs/app.jsonl")
    fw = sinks.jsonl("seclogs/firewall.jsonl")
    labels = sinks.rows("ground_truth/labels.csv", LABEL_HEADER)
    events: list[tuple[str, str, dict]] = []
    n = per_day if weekday else per_day // 5
    secs = (8.5 * 3600 + rng.beta(2, 2, n) * 10 * 3600).astype(np.int64)
    users = rng.integers(1, n_users + 1, n)
    kinds = rng.choice(["auth", "app", "fw"], size=n, p=[0.2, 0.6, 0.2])
    # Routine traffic: every column drawn as an array, then assembled (one numpy call per column).
    stamps = np.char.add(
        np.datetime_as_string(midnight_local + secs.astype("timedelta64[s]"), unit="s"), "Z"
    ).tolist()
    ok = (rng.random(n) > 0.03).tolist()
    ips = np.char.add(
        np.char.add(np.char.add("10.", rng.integers(10, 40, n).astype(str)), "."),
        np.char.add(
            np.char.add(rng.integers(0, 256, n).astype(str), "."), rng.integers(1, 255, n).astype(str)
        ),
    ).tolist()
    apps = rng.choice(APPS, size=n).tolist()
    actions = rng.choice(ACTIONS, size=n).tolist()
    for i, kind in enumerate(kinds.tolist()):
        t, user = stamps[i], f"u{users[i]:04d}"
        if kind == "auth":
            ev = {
                "ts": t,
                "user": user,
                "src_ip": ips[i],
                "method": "password+otp",
                "result": "success" if ok[i] else "failure",
            }
        elif kind == "app":
            ev = {"ts": t, "user": user, "app": apps[i], "action": actions[i], "status": 200}
        else:
            ev = {
                "ts": t,
                "action": "ALLOW",
                "src_ip": ips[i],
                "dst_ip": "10.1.0.10",
                "proto": "TCP",
                "dst_port": 443,
            }
        events.append((t, kind, ev))
    # Off-hours logins by accounts that normally do not work at night.
    n_off = rng.binomial(max(1, n // 5), sc.rates["offhours_share"])
    for _ in range(n_off):
        t0 = midnight_local + np.timedelta64(int(rng.integers(3600, 5 * 3600)), "s")
        user = f"u{rng.integers(1, n_users + 1):04d}"
        t = _ts(t0)
        events.append(
            (
                t,
                "auth",
                {
                    "ts": t,
                    "user": user,
                    "src_ip": _ip(rng, False),
                    "method": "password+otp",
                    "result": "success",
                },
            )
        )
        labels.write(
            {
                "feed": "seclogs",
                "record_key": f"auth:{user}:{t}",
                "pattern": "offhours_login",
                "entity_id": user,
                "start": t,
                "end": t,
                "detail": "login 01:00-05:00 Hong Kong time from an outside address",
            }
        )
    # Brute force: Poisson number of bursts per day.
    for _ in range(rng.poisson(sc.rates["bruteforce_incidents_per_30d"] / 30)):
        src = _ip(rng, False)
        t0 = midnight_local + np.timedelta64(int(rng.integers(0, 86400 - 1200)), "s")
        tries = int(rng.integers(40, 300))
        offs = np.sort(rng.integers(0, int(rng.integers(300, 900)), tries))
        targets = [f"u{u:04d}" for u in rng.integers(1, n_users + 1, int(rng.integers(1, 6)))]
        for k, off in enumerate(offs):
            t = _ts(t0 + np.timedelta64(int(off), "s"))
            ok = k == tries - 1 and rng.random() < 0.3
            events.append(
                (
                    t,
                    "auth",
                    {
                        "ts": t,
                        "user": targets[k % len(targets)],
                        "src_ip": src,
                        "method": "password",
                        "result": "success" if ok else "failure",
                    },
                )
            )
            events.append(
                (
                    t,
                    "fw",
                    {
                        "ts": t,
                        "action": "ALLOW",
                        "src_ip": src,
                        "dst_ip": "10.1.0.10",
                        "proto": "TCP",
                        "dst_port": 443,
                    },
                )
            )
        labels.write(
            {
                "feed": "seclogs",
                "record_key": f"bruteforce:{src}",
                "sub_key": ",".join(targets),
                "pattern": "bruteforce",
                "entity_id": src,
                "start": _ts(t0 + np.timedelta64(int(offs[0]), "s")),
                "end": _ts(t0 + np.timedelta64(int(offs[-1]), "s")),
                "detail": f"{tries} attempts",
            }
        )
    events.sort(key=lambda e: e[0])
    # Log shippers number events per log and day; the number is the event's key in the lake.
    stamp = str(np.datetime64(sc.start, "D") + np.timedelta64(day, "D")).replace("-", "")
    serial = {"auth": 0, "app": 0, "fw": 0}
    for _, kind, ev in events:
        serial[kind] += 1
        ev = {"event_id": f"{kind}-{stamp}-{serial[kind]:06d}", **ev}
        (auth if kind == "auth" else app if kind == "app" else fw).write(ev)
