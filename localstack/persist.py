"""LocalStack with its S3 and SQS state kept across a restart.

localstack-core forgets everything when it stops: buckets, objects, queues and the messages in
them (persistence, PERSISTENCE=1, is a LocalStack Pro feature; the community package has the
state API it builds on, but not the code that saves and loads). A restart in the middle of a
capture would lose the capture. This starts LocalStack exactly as `python -m
localstack.runtime.main` does, plus:

- on a clean shutdown (SIGTERM, SIGINT), once the requests already inside have had a second
  to finish (new ones are answered 503 from the moment it is told to stop, and AWS SDKs retry
  those) and before its services stop: the S3 and SQS stores
  (every bucket and object's metadata, every queue and message with its receive count and
  visibility) pickled with LocalStack's own state pickler, and every object's bytes, into
  $WEIR_LOCALSTACK_STATE (written to a new directory, then renamed over the old one);
- on start, once its services are loaded and before its gateway serves a request: that
  state loaded back.

A message in flight when LocalStack stopped comes back in flight with its visibility deadline
(wall-clock), so it is delivered again when the deadline passes, as on AWS. A multipart upload
in progress is not kept (the client sees its upload fail). After a crash (SIGKILL) nothing is
saved: the next start loads the state of the last clean shutdown.

Lambda without Docker: LocalStack's Lambda service prepares a Docker runtime for every function
it creates; without Docker the function goes Failed and a CloudFormation stack that holds one
rolls back. weir's stack (infra/, deployed here by localstack/deploy.py) holds functions, and
weir-lambda-local runs their real binaries against the queues. So the runtime executor is
replaced by one that prepares nothing: CreateFunction succeeds and the function is Active,
its configuration, role, event source mappings (created disabled) and permissions are there
to inspect, and invoking it through LocalStack fails with a message that says where the
functions run.

Usage: python persist.py   (WEIR_LOCALSTACK_STATE: the state directory; unset: no persistence)
"""

import logging
import os
import pickle as std_pickle
import shutil
import sys
import time

LOG = logging.getLogger("weir.persist")
STATE = os.environ.get("WEIR_LOCALSTACK_STATE", "")
DRAIN_S = 1.0


def _stores():
    from localstack.services.s3.models import s3_stores
    from localstack.services.sqs.models import sqs_stores

    return {"s3": s3_stores, "sqs": sqs_stores}


def _s3_backend():
    from localstack.services.plugins import SERVICE_PLUGINS

    return SERVICE_PLUGINS.get_service("s3")._provider._storage_backend


def _buckets(s3_stores):
    """Every bucket once (buckets are shared by the regions of an account)."""
    seen = {}
    for regions in s3_stores.values():
        for store in regions.values():
            for bucket in store.buckets.values():
                seen[id(bucket)] = bucket
    return list(seen.values())


def _objects(bucket):
    from localstack.services.s3.models import S3Object

    return [o for o in bucket.objects.values(with_versions=True) if isinstance(o, S3Object)]


def _fresh_locks():
    """Pickle every lock as a new, free one. dill keeps a lock's held state, and a lock held
    while saving (a store's mutex, a long poll's waiter in a queue's condition) would come
    back held by no thread: the first request to touch it would hang."""
    import _thread

    from localstack.state.pickle import register

    @register(_thread.LockType)
    def _lock(pickler, obj):
        pickler.save_reduce(_thread.allocate_lock, (), obj=obj)

    @register(_thread.RLock)
    def _rlock(pickler, obj):
        pickler.save_reduce(_thread.RLock, (), obj=obj)


def save():
    if not STATE:
        return
    from localstack.state import pickle

    _fresh_locks()

    # LocalStack answers every new request 503 from the moment it is told to stop (SDKs retry
    # those); let the requests already inside finish, so that a write acknowledged to a client
    # is in the snapshot.
    time.sleep(DRAIN_S)
    t0 = time.time()
    tmp = STATE + ".new"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "s3-data"))
    stores = _stores()
    backend = _s3_backend()
    backend.flush()
    data = {}  # (bucket, key, version id) -> file name
    size = 0
    for bucket in _buckets(stores["s3"]):
        for obj in _objects(bucket):
            name = str(len(data))
            with backend.open(bucket.name, obj, mode="r") as src, open(
                os.path.join(tmp, "s3-data", name), "wb"
            ) as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
                    size += len(chunk)
            data[(bucket.name, obj.key, obj.version_id)] = name
    for name, store in stores.items():
        with open(os.path.join(tmp, f"{name}.pickle"), "wb") as f:
            pickle.dump(store, f)
    with open(os.path.join(tmp, "s3-data", "index.pickle"), "wb") as f:
        std_pickle.dump(data, f)
    shutil.rmtree(STATE, ignore_errors=True)
    os.rename(tmp, STATE)
    LOG.warning(
        "weir: saved LocalStack state to %s (%d objects, %d bytes) in %.1f s",
        STATE, len(data), size, time.time() - t0,
    )


def _replace(bundle, loaded):
    """Put the loaded stores into LocalStack's store bundle in place (the providers hold it)."""
    with bundle.lock:
        bundle.clear()
        bundle.update(loaded)
        bundle.__dict__.update(loaded.__dict__)


def load():
    if not (STATE and os.path.isdir(STATE)):
        return
    from localstack.state import pickle

    t0 = time.time()
    stores = _stores()
    for name, bundle in stores.items():
        with open(os.path.join(STATE, f"{name}.pickle"), "rb") as f:
            _replace(bundle, pickle.load(f))
    with open(os.path.join(STATE, "s3-data", "index.pickle"), "rb") as f:
        data = std_pickle.load(f)
    backend = _s3_backend()
    n = 0
    for bucket in _buckets(stores["s3"]):
        backend.create_bucket(bucket.name)
        for obj in _objects(bucket):
            name = data.get((bucket.name, obj.key, obj.version_id))
            if name is None:
                LOG.warning("weir: no saved data for s3://%s/%s", bucket.name, obj.key)
                continue
            # write() recomputes the etag (an MD5, where a multipart object's is not): keep
            # what the object had.
            kept = (obj.etag, obj.size, obj.internal_last_modified)
            with open(os.path.join(STATE, "s3-data", name), "rb") as src, backend.open(
                bucket.name, obj, mode="w"
            ) as dst:
                dst.write(src)
            obj.etag, obj.size, obj.internal_last_modified = kept
            n += 1
    LOG.warning("weir: loaded LocalStack state from %s (%d objects) in %.1f s", STATE, n, time.time() - t0)


def _lambda_without_docker():
    """LocalStack's Lambda service with a runtime executor that prepares nothing (see above)."""
    from localstack.services.lambda_.invocation import execution_environment, runtime_executor, version_manager
    from localstack.services.lambda_ import provider

    class NoDocker(runtime_executor.RuntimeExecutor):
        def __new__(cls, *args, **kwargs):
            raise runtime_executor.LambdaRuntimeException(
                "weir: LocalStack runs no Lambda runtime here (no Docker); the functions run "
                "under weir-lambda-local (bash localstack/ctl.sh start-functions)"
            )

        @classmethod
        def prepare_version(cls, function_version):
            pass

        @classmethod
        def cleanup_version(cls, function_version):
            pass

        @classmethod
        def validate_environment(cls):
            return True

    for module in (version_manager, execution_environment, provider):
        module.get_runtime_executor = lambda: NoDocker


def main():
    _lambda_without_docker()
    from localstack.runtime import runtime
    from localstack.runtime.shutdown import SHUTDOWN_HANDLERS

    on_starting = runtime.LocalstackRuntime._on_starting

    # After the start hooks (which load the services: EAGER_SERVICE_LOADING), before the
    # gateway exists: no request can see, or race with, a half-loaded state.
    def _on_starting(self):
        on_starting(self)
        try:
            load()
        except Exception:  # a state that cannot be loaded must not stop LocalStack
            LOG.exception("weir: could not load the LocalStack state in %s; what did not load starts empty", STATE)

    runtime.LocalstackRuntime._on_starting = _on_starting

    def _save():
        try:
            save()
        except Exception:  # said loudly: the shutdown goes on without a snapshot
            LOG.exception("weir: could not save the LocalStack state in %s", STATE)

    # Shutdown handlers run before the services stop (they have a higher hook priority).
    SHUTDOWN_HANDLERS.register(_save)

    from localstack.runtime.main import main as localstack_main

    sys.exit(localstack_main())


if __name__ == "__main__":
    main()
