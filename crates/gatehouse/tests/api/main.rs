//! End-to-end tests of the REST API (`docs/api.md`) against a real server on a
//! real listener, on SQLite or PostgreSQL (`GATEHOUSE_TEST_BACKEND`).

mod helpers;

mod accounts;
mod audit;
mod audit_trail;
mod auth;
mod bodies;
mod bundles;
mod checks;
mod deployments;
mod emergency;
mod errors;
mod fail_closed;
mod gate;
mod gate_promises;
mod groups;
mod hardening;
mod infrastructures;
mod inventory;
mod limits;
mod metrics;
mod mlflow;
mod models;
mod notifications;
mod openapi;
mod pagination;
mod projects;
mod replicas;
mod risk;
mod role_rename_race;
mod roles;
mod signoff_race;
mod signoffs;
mod slowloris;
mod tiers;
mod tokens;
mod users;
mod versions;
mod web_ui;
