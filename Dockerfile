# One image for the indexer, the API and the migration step:
#
#   docker build -t aave-svr-indexer .
#   docker run --rm -e RPC_URL_ETHEREUM=... -e DATABASE_URL=... aave-svr-indexer    # run
#   docker run --rm -p 8000:8000 -e DATABASE_URL=... aave-svr-indexer serve --host 0.0.0.0
#
# The entrypoint is the `aave-indexer` command; global options go before the subcommand
# (`--log-json run ...`). The development devnet (anvil, solc) is not part of the image.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, pinned by constraints.txt, so this layer is reused while only the
# code changes.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt

COPY . .
# Chart.js for the dashboard (api/static/vendor/, package data): the version that
# package-lock.json pins, from the npm registry, checked against the lock's integrity hash;
# the image has no node_modules and fetches nothing at run time.
RUN mkdir -p api/static/vendor \
 && python -c "import base64, hashlib, io, json, tarfile, urllib.request; \
pin = json.load(open('package-lock.json'))['packages']['node_modules/chart.js']; \
url = 'https://registry.npmjs.org/chart.js/-/chart.js-' + pin['version'] + '.tgz'; \
data = urllib.request.urlopen(url, timeout=120).read(); \
algo, _, digest = pin['integrity'].partition('-'); \
assert base64.b64encode(hashlib.new(algo, data).digest()).decode() == digest, url + ': not the integrity package-lock.json pins'; \
tar = tarfile.open(fileobj=io.BytesIO(data)); \
[open('api/static/vendor/' + out, 'wb').write(tar.extractfile('package/' + name).read()) for name, out in (('dist/chart.umd.min.js', 'chart.umd.min.js'), ('LICENSE.md', 'chart.js-LICENSE.md'))]"
# Install the project; then, if the package does not carry schema.sql itself, ship it in
# the installed package (`migrate` reads it from there when no source tree is beside it);
# then a smoke test from outside the source tree: the command, the config, the schema.
RUN pip install -c constraints.txt . \
 && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && { test -f "$site/indexer/schema.sql" || cp schema.sql "$site/indexer/schema.sql"; } \
 && cd / \
 && aave-indexer --help > /dev/null \
 && aave-indexer config check > /dev/null \
 && python -c "from indexer.store.migrate import schema_sql; assert 'aave_indexer_reader' in schema_sql()" \
 && python -c "from api.dashboard import STATIC_DIR, chart_js_path; assert chart_js_path() and (STATIC_DIR / 'index.html').is_file()"


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 aave \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin aave

COPY --from=build /opt/venv /opt/venv

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

# 8000: the API (`serve --port`); 9100: indexer metrics (`run --metrics-port 9100`).
EXPOSE 8000 9100

ENTRYPOINT ["aave-indexer"]
CMD ["run"]
