# One image for every mallcare service; SERVICE picks which one the container runs:
#   docker build --build-arg SERVICE=triage -t mallcare-triage .
# All nine packages (common, the six services, the web console and the operator's command
# `mallcare`) are installed, so the images are the same bytes up to the last layers (shared build
# cache, one thing to scan and ship).
FROM python:3.11.7-slim-bookworm

# PYTHONWARNINGS: nameko's start-up notices would be the only lines of the log that are not JSON.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONWARNINGS=ignore::Warning:nameko.cli.main,ignore::Warning:nameko.cli.commands \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Pinned runtime first: it changes far less often than the code, so this layer stays cached.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# Each service's config.yml is read from services/<svc>/ at run time, so the tree is kept.
COPY services/ services/
RUN pip install services/common services/intake services/triage \
        services/resolution services/feedback services/analytics services/notify services/console services/cli

COPY deploy/policy/ deploy/policy/

# A fixed uid lets volume permissions and k8s securityContext refer to it.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mallcare
USER 10001

# ARG late so that every layer above is shared between the six service images.
ARG SERVICE=intake
ENV SERVICE=${SERVICE} \
    MALLCARE_POLICY_DIR=/app/deploy/policy

EXPOSE 8001 8002 8003 8004 8005 8007

HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 \
    CMD python -m mallcare_common.healthcheck "${SERVICE}"

# exec: nameko becomes PID 1 and gets SIGTERM from `docker stop`, so it stops gracefully.
# The service's class by name (intake -> intake.service:IntakeService): only it starts.
CMD ["sh", "-c", "exec nameko run --config services/${SERVICE}/config.yml ${SERVICE}.service:$(echo ${SERVICE} | sed 's/^./\\U&/')Service"]
