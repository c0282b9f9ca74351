"""Health checks of a quantum-mind cluster: does Redis answer (with the password), is the store reachable and
at this code's schema, which Celery nodes answer a ping, is Flower listening behind its basic auth.

Used by ``qmind cluster up`` (refuse to start against services that do not answer) and ``qmind cluster status``.
"""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request

from .cluster import ClusterError


def check_broker(config) -> None:
    """Raise ClusterError unless the Redis broker answers PING with the configured credentials."""
    import redis

    if config.eager:
        raise ClusterError("no broker configured: set QMIND_BROKER_URL, e.g. "
                           "QMIND_BROKER_URL=redis://:PASSWORD@127.0.0.1:6379/0 (start Redis first; "
                           "`scripts/ensure_services.sh` starts a local one)")
    where = config.redacted_broker()
    client = None
    try:
        client = redis.Redis.from_url(config.broker_url, socket_connect_timeout=config.broker_connect_timeout_s,
                                      socket_timeout=config.broker_connect_timeout_s)
        client.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise ClusterError(f"Redis at {where} refused the credentials ({exc}): check the password in "
                           f"QMIND_BROKER_URL (redis://:PASSWORD@host:port/db)") from exc
    except redis.exceptions.ResponseError as exc:
        raise ClusterError(f"Redis at {where} answered with an error ({exc}); does it need a password? "
                           f"Put it in QMIND_BROKER_URL as redis://:PASSWORD@host:port/db") from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise ClusterError(f"Redis does not answer at {where} ({exc}). Start it (e.g. `redis-server` or "
                           f"`scripts/ensure_services.sh`) or fix QMIND_BROKER_URL") from exc
    finally:
        if client is not None:
            client.close()


def check_store(config) -> str:
    """Raise ClusterError unless the database answers and is at this code's schema; returns the revision."""
    from sqlalchemy.exc import DBAPIError

    from db.errors import StoreError
    from db.migrate import ensure_schema
    from db.session import make_engine, redact

    engine, where = None, "QMIND_DATABASE_URL"
    try:
        engine = make_engine(config.database_url)
        where = redact(engine.url)
        return ensure_schema(engine, upgrade=False)
    except StoreError as exc:
        raise ClusterError(str(exc)) from exc
    except DBAPIError as exc:
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise ClusterError(f"the database at {where} does not answer ({detail}). Start PostgreSQL or fix "
                           f"QMIND_DATABASE_URL (postgresql+psycopg://user:password@host:5432/dbname)") from exc
    except Exception as exc:  # a malformed URL, a missing driver
        raise ClusterError(f"cannot open the store from QMIND_DATABASE_URL: {type(exc).__name__}: {exc}") from exc
    finally:
        if engine is not None:
            engine.dispose()


def ping_workers(celery_app, *, timeout_s: float = 2.0) -> set[str]:
    """``celery inspect ping`` broadcast: the node names of every worker on the broker that answered."""
    try:
        replies = celery_app.control.ping(timeout=timeout_s) or []
    except Exception:  # noqa: BLE001 - the broker is down: nobody answered
        replies = []
    return {node for reply in replies for node, body in reply.items() if (body or {}).get("ok") == "pong"}


def flower_url(config) -> str:
    host = config.flower_address
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{config.flower_port}"


def flower_listening(config) -> bool:
    host = flower_url(config).split("//")[1].rsplit(":", 1)[0]
    try:
        with socket.create_connection((host, config.flower_port), timeout=1.0):
            return True
    except OSError:
        return False


def check_flower(config, *, timeout_s: float = 5.0) -> dict:
    """Flower's state: listening, basic auth enforced (401 without credentials), dashboard 200 with them."""
    base = flower_url(config)
    out = {"url": base, "listening": flower_listening(config), "auth_enforced": None, "ok": False}
    if not out["listening"]:
        return out

    def status(headers: dict) -> int:
        req = urllib.request.Request(f"{base}/workers", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    token = base64.b64encode(f"{config.flower_user}:{config.flower_password}".encode()).decode()
    anonymous = status({})
    out["auth_enforced"] = anonymous == 401
    out["authorized_status"] = status({"Authorization": f"Basic {token}"})
    out["ok"] = out["auth_enforced"] and out["authorized_status"] == 200
    return out
