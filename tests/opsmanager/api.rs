//! `GET` and `POST /backups/opsmanager`.
