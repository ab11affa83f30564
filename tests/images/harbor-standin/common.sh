#!/bin/bash
# Helpers shared by install.sh and prepare of the test-bed Harbor installer stand-in.
say() { printf '\n== %s\n' "$*"; }
fail() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Sets DOCKER_COMPOSE to the Compose command to use (v2 plugin first, then docker-compose).
check_docker() {
  command -v docker >/dev/null 2>&1 || fail "docker is not installed: install Docker Engine 20.10 or newer first."
  docker info >/dev/null 2>&1 || fail "cannot talk to the Docker daemon: is it running, and may this user use it?"
  echo "docker: $(docker version --format '{{.Server.Version}}')"
}

check_compose() {
  if docker compose version >/dev/null 2>&1; then
    DOCKER_COMPOSE="docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    DOCKER_COMPOSE="docker-compose"
  else
    fail "neither 'docker compose' nor docker-compose is installed."
  fi
  echo "compose: $($DOCKER_COMPOSE version --short 2>/dev/null || echo unknown)"
}
