#!/bin/sh
# Package post-install (deb and rpm): the courtbak system user and the
# directories docs/usage.md §23.5 lists, with their owners and modes.
# Safe to run again on upgrade: it only creates what is missing and
# restores the modes.
set -e

if ! getent group courtbak >/dev/null 2>&1; then
	groupadd --system courtbak
fi
if ! getent passwd courtbak >/dev/null 2>&1; then
	useradd --system --gid courtbak --home-dir /var/lib/courtbak --no-create-home \
		--shell /usr/sbin/nologin --comment "courtbak backups" courtbak
fi

# Configuration, password files, keys, AWS credentials (home), cache and
# reports: courtbak's alone. Logs (for cron) readable by its group.
for dir in /etc/courtbak /var/lib/courtbak /var/lib/courtbak/reports /var/cache/courtbak; do
	install -d -m 0700 -o courtbak -g courtbak "$dir"
done
install -d -m 0750 -o courtbak -g courtbak /var/log/courtbak

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
exit 0
