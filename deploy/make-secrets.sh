#!/bin/sh
# Create the secret files docker-compose.yml mounts (deploy/secrets/ by default): the vault's master
# key, the database password (for PostgreSQL and, as a pgpass file, for fleetfix) and Flower's login.
# Existing files are kept: run it again after deleting one to make a new one. Each file is mode 0600
# and, when run as root, owned by uid 10001 (the image's user); otherwise the chown to run is printed.
#
#   sh deploy/make-secrets.sh [DIRECTORY]
set -eu

dir=${1:-"$(dirname "$0")/secrets"}
owner=10001
umask 077
mkdir -p "$dir"

random_text() {  # URL-safe base64 of N random bytes
  head -c "$1" /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_'
}

random_password() {  # letters and digits only: safe in a pgpass line and in Python source
  head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"
}

write() {  # write FILE from stdin unless it exists
  if [ -e "$dir/$1" ]; then
    echo "kept    $dir/$1"
    cat > /dev/null
    return
  fi
  cat > "$dir/$1"
  chmod 600 "$dir/$1"
  echo "created $dir/$1"
}

# 32 random bytes, URL-safe base64 (44 characters): the form fleetfix expects
random_text 32 | write master.key
password=$(cat "$dir/postgres_password" 2>/dev/null || random_password 32)
printf '%s' "$password" | write postgres_password
# host:port:database:user:password, for every fleetfix database on the compose network
printf 'postgres:5432:*:fleetfix:%s\n' "$password" | write pgpass
flower_password=$(random_password 24)
printf '# Flower login (user admin); see docs/deploy.md\nbasic_auth = ["admin:%s"]\n' "$flower_password" \
  | write flowerconfig.py

if [ "$(id -u)" = 0 ]; then
  chown "$owner:$owner" "$dir"/master.key "$dir"/postgres_password "$dir"/pgpass "$dir"/flowerconfig.py
else
  echo "now make them readable by the containers' user:"
  echo "  sudo chown $owner:$owner $dir/master.key $dir/postgres_password $dir/pgpass $dir/flowerconfig.py"
fi
echo "Flower's login is in $dir/flowerconfig.py; back up master.key: the vault cannot be read without it."
