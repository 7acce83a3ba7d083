//! Integration tests: each builds the application, talks HTTP to it on loopback, and runs once on
//! SQLite and once on PostgreSQL.

mod support;

mod auth;
mod automations;
mod booking;
mod browser;
mod cli;
mod cross_tenant;
mod domains;
mod events;
mod in_browser;
mod pages;
mod platform;
mod plugin_runtime;
mod plugins;
mod policies;
mod portal;
mod replicas;
mod sms;
mod tenants;
mod tickets;
mod tracking;
mod webhooks;
