//! Every setting, declared once: its name, its kind (type and validation,
//! see `kinds.rs`), its default and its doc line. The parser, the
//! unknown-key check, the typed [`Settings`] and the table in
//! docs/OPERATIONS.md (`jangteo settings`) all come from this list.
//!
//! A declaration reads `name: Kind = "default";` (or `= unset;`), with an
//! optional note in parentheses after the default for the docs' table
//! (`"14 days"`; for an unset one, what it means: `"CPU count"`). The
//! `///` lines are the setting's meaning, as the table shows it.

use super::kinds::*;

settings! {
    /// `development` or `production`. Production refuses the built-in sandbox payment
    /// provider (a confirm naming it gets `422 validation_failed` on `provider`); Toss
    /// and KakaoPay are enabled by their keys (`toss_secret_key`, `kakaopay_secret_key` +
    /// `kakaopay_cid`)
    env: Deployment = "development";
    /// address to bind; port 0 picks a free port (the log says which)
    listen: Addr = "127.0.0.1:8080";
    /// directory for the SQLite file and uploaded media
    data_dir: Text = "./data";
    /// `sqlite://PATH`, or `mysql://USER[:PASS]@HOST:PORT/DATABASE` for MySQL 8 /
    /// MariaDB 10.11 (the database must exist; migrations run on start)
    database_url: Option<DatabaseUrl> = unset ("`sqlite://<data_dir>/jangteo.db`");
    /// tracing filter, e.g. `info` or `jangteo=debug,actix_web=info`
    log: LogFilter = "info";
    /// `text` or `json` (JSON lines)
    log_format: LogFormat = "text";
    /// HTTP worker threads
    workers: Option<Num<usize, 1, MANY>> = unset ("CPU count");
    /// idle lifetime of a session; each use extends it
    session_ttl_secs: Secs<1, ANY> = "1209600" ("14 days");
    /// mark the session cookie `Secure` (set `true` behind HTTPS)
    cookie_secure: Flag = "false";
    /// largest JSON request body accepted
    max_body_bytes: Num<usize, 1, MANY> = "65536";
    /// longest request URI (path and query string) accepted; a longer one
    /// gets `414 uri_too_long` (JSON envelope) before routing, and nothing is done. See
    /// "Limits of the HTTP layer" below for why it cannot exceed 65534
    max_uri_bytes: Num<usize, 256, 65_534> = "8192";
    /// login attempts per (email, client address) within the window before 429; per
    /// address over all emails 4x; an email's failures from all addresses beyond 10x
    /// only slow each further attempt by 1 s (no lockout of the owner). Also the limit
    /// for passcode guesses per room and user, and for password confirmations
    login_max_failures: Num<u32, 1, MANY> = "5";
    /// window for counting failed logins
    login_window_secs: Secs<1, ANY> = "900";
    /// sign-ups per client address within the window before 429 (0: no sign-ups)
    signup_max_per_address: Num<u32, 0, MANY> = "20";
    /// window for counting sign-ups per address
    signup_window_secs: Secs<1, ANY> = "3600";
    /// take the client address from `X-Forwarded-For` (only behind a trusted proxy)
    trust_forwarded_for: Flag = "false";
    /// Argon2id memory cost
    argon2_memory_kib: Num<u32, 8, MANY> = "19456";
    /// Argon2id time cost
    argon2_iterations: Num<u32, 1, MANY> = "2";
    /// grace period on SIGINT/SIGTERM: for open requests, then again for background
    /// work (an outbox job in flight)
    shutdown_timeout_secs: Secs<0, ANY> = "10";
    /// messages per second per user in an open room (token bucket refill)
    chat_send_rate: Positive = "5";
    /// burst size of that bucket
    chat_send_burst: Positive = "20";
    /// messages per second per user in a direct room (token bucket refill); beyond it a
    /// send gets an `error` frame `rate_limited` and is not stored
    chat_direct_send_rate: Positive = "10";
    /// burst size of that bucket
    chat_direct_send_burst: Positive = "20";
    /// send read receipts in open rooms too (direct rooms always do)
    chat_open_room_receipts: Flag = "false";
    /// a room actor stops after this long without traffic (rebuilt from the store on
    /// next use)
    chat_room_idle_secs: Secs<1, ANY> = "300";
    /// badge updates are coalesced over this window
    chat_badge_delay_ms: Millis<0, ANY> = "100";
    /// under sustained load (the next message arrives within 2 ms of the last commit) a
    /// chat commit waits this long for more messages to share its fsync: fewer commits
    /// and less CPU per message for a little latency (docs/BENCHMARKS.md); `0` never
    /// waits; unset: 2000 on SQLite (an exact sleep on the committer thread), 500 on
    /// the network stores (up to 1.5 ms with the timer)
    chat_commit_delay_us: Option<Micros<0, 20_000>> = unset;
    /// frames queued per connection; a client that falls this far behind is
    /// disconnected (close 4008) and resumes
    ws_outbound_queue: Num<usize, 1, MANY> = "1024";
    /// server ping interval
    ws_heartbeat_secs: Secs<1, ANY> = "15";
    /// close a connection that sent nothing (not even a pong) for this long
    ws_idle_timeout_secs: Secs<1, ANY> = "45";
    /// re-check a connection's login session this often; an expired or ended session
    /// closes it with 4001 (logout, withdrawal and password changes close it at once)
    ws_session_check_secs: Secs<1, ANY> = "60";
    /// a new connection holds live events until its first frame (e.g. `resume`) or this
    /// long
    ws_sync_window_ms: Millis<0, ANY> = "300";
    /// client frames per second per connection (bursts of 100); the excess is dropped,
    /// with one `rate_limited` error frame per second
    ws_frames_per_sec: Positive = "50";
    /// largest frame accepted from a client; larger closes the connection (1009)
    ws_max_frame_bytes: Num<usize, 1, MANY> = "65536";
    /// open WebSocket connections and notification streams (SSE) together (devices,
    /// tabs) one user may hold **on each node**; a further upgrade or stream gets `429
    /// rate_limited` with `Retry-After`, and a place frees when a connection ends (a
    /// stream whose client went away is noticed at the next keep-alive or two,
    /// `sse_keepalive_secs`). With N nodes behind a balancer a user may hold up to N
    /// times this
    ws_max_connections_per_user: Num<usize, 1, MANY> = "10";
    /// how often a notification stream sends a `: keep-alive` comment; also how soon a
    /// stream whose client went away frees its place
    sse_keepalive_secs: Secs<1, ANY> = "15";
    /// payment provider webhooks accepted per source address per minute; more get `429
    /// rate_limited` (the provider delivers again)
    webhook_per_minute_per_address: Num<u32, 1, 1_000_000> = "600";
    /// payment reconciles that may wait at once; a webhook that would add one more gets
    /// `503 busy` with `Retry-After`. Webhooks only queue a reconcile for payment keys
    /// we recorded or started, and at most one waiting per payment
    webhook_queue_max: Num<i64, 1, 1_000_000> = "1000";
    /// image uploads one user may make per hour (`429 rate_limited`), counted before
    /// any decoding
    uploads_per_hour: Num<u32, 1, 1_000_000> = "60";
    /// MiB of uploaded originals one user may keep (attached or not); an upload past it
    /// gets `409 limit_reached` (`storage`), checked by the insert itself
    media_quota_mib: Num<i64, 1, 1_048_576> = "1024";
    /// uploads that no listing, product or review uses are deleted (row, original and
    /// thumbnail) this long after upload; fractions allowed (`0.5` is 30 minutes); `0`
    /// deletes them at the next sweep (tests)
    media_orphan_hours: FractionalHours<0, 8_760> = "24";
    /// how often each node sweeps unused uploads (the deletes are conditional: several
    /// nodes do not collide)
    media_sweep_secs: Secs<1, ANY> = "600";
    /// orders (shop and used listings) one buyer may have waiting for payment at once;
    /// one more gets `409 limit_reached` (`details.limit: unpaid_orders`). Counted
    /// inside the order's transaction under the buyer's row lock, so parallel orders
    /// cannot pass it
    max_unpaid_orders: Num<i64, 1, 1_000_000> = "5";
    /// shop units one buyer may hold in orders waiting for payment; an order that would
    /// pass it gets `409 limit_reached` (`unpaid_units`) and reserves nothing
    max_unpaid_units: Num<i64, 1, 100_000_000> = "30";
    /// after a buyer's order of a used listing is cancelled or expires unpaid, how long
    /// before the same buyer may order that listing again (`429 rate_limited` with
    /// `Retry-After`): a listing cannot be held forever by cancelling and re-ordering.
    /// `0` turns it off
    listing_reorder_cooldown_secs: Num<i64, 0, 2_592_000> = "1800";
    /// listings one user may post per hour (`429 rate_limited` with `Retry-After`);
    /// counted in the rate limiter (Redis with several nodes) after the form is valid
    listings_per_hour: Num<u32, 1, 1_000_000> = "20";
    /// keyword alerts one watcher receives about one seller's new listings in any hour;
    /// further matches from that seller in the hour are not announced (counted per
    /// alert in `keyword_alert_log`, once per event whichever node handles it)
    keyword_alerts_per_seller_per_hour: Num<u32, 1, 1_000_000> = "3";
    /// comma-separated web origins (`https://partner.example,http://localhost:3000`:
    /// scheme, host and port as browsers send them in `Origin`, no path) allowed
    /// **besides the server's own** (the origin of `public_url` and the request's
    /// `Host`, where the bundled web client lives) to open `/ws` and to make
    /// cookie-authenticated changes. An upgrade whose `Origin` is present and neither
    /// own nor listed gets `403 forbidden`; a cookie-authenticated
    /// POST/PUT/PATCH/DELETE from such a page (by `Origin`, or `Sec-Fetch-Site` other
    /// than `same-origin`/`none`) gets `403 cross_origin` before routing. Requests
    /// without those headers (native apps, bots) and bearer-token requests are not
    /// affected. Empty (the default): only the server's own pages
    ws_allowed_origins: Origins = "";
    /// `full`: every commit is fsynced before anything is acknowledged; `normal`:
    /// acknowledged messages survive a crash of the process but not a power loss
    /// (SQLite WAL `synchronous=NORMAL`), for a much lower ack latency
    sqlite_synchronous: Synchronous = "full";
    /// `redis://HOST:PORT`: sessions, login/passcode rate limits and the feed cache
    /// move to Redis (shared by all nodes). Unset: sessions in SQL, limits and cache in
    /// process. Losing Redis signs users out (clear 401) and empties caches; no user
    /// data is lost
    redis_url: Option<Scheme<REDIS>> = unset;
    /// prefix of every Redis key (several deployments or test runs can share one Redis)
    redis_prefix: Text = "jangteo:";
    /// MySQL: connections per node (SQLite always uses one writer and 8 readers)
    database_pool_size: Num<u32, 1, 1_024> = "16";
    /// `mongodb://HOST:PORT/DATABASE`: chat messages in MongoDB (database defaults to
    /// `jangteo`; indexes are created on start). Unset: messages in the SQL database
    mongodb_url: Option<Scheme<MONGODB>> = unset;
    /// `HOST:PORT[,HOST:PORT...]`: the bus runs on Kafka: cross-node chat delivery and
    /// alarm events. Unset: in-process bus, one node only
    kafka_brokers: Option<Brokers> = unset;
    /// prefix of every topic name (several clusters or test runs on one broker)
    kafka_topic_prefix: Text = "";
    /// partitions of each topic Jangteo creates on start (existing topics are left as
    /// they are)
    kafka_partitions: Num<i32, 1, 1_024> = "8";
    /// how long the producer gathers events before a request (`linger.ms`). 0
    /// sends each event at once (chat is latency-bound); 2 cut tansu's work and the
    /// two-node p50 at 50,000 deliveries/s on the test machine (docs/BENCHMARKS.md,
    /// "fifth stop") at the price of up to 2 ms per cross-node event
    kafka_linger_ms: Num<u32, 0, 1_000> = "0";
    /// longest a consumer's fetch waits at the broker (`fetch.wait.max.ms`).
    /// Apache Kafka answers a fetch as soon as an event is there, so raise it (100-500)
    /// in production: fewer idle fetches, no added latency. tansu, the broker the tests
    /// use, always waits the full time: there it is the cross-node delivery latency and
    /// sets the idle fetch rate (docs/BENCHMARKS.md, "fifth stop")
    kafka_fetch_wait_ms: Num<u32, 1, 5_000> = "10";
    /// this node's name: stamped on the events it publishes (a node ignores its own)
    /// and used in its Kafka client ids
    node_id: NodeId = unset ("`<hostname>-<pid>`");
    /// how long a new shop order waits for its payment; then it expires (once, by the
    /// outbox worker on whichever node claims the job) and its reserved stock goes
    /// back
    order_payment_window_secs: Secs<1, 86_400> = "600" ("10 min");
    /// how often each node's outbox worker looks for due jobs
    outbox_poll_ms: Millis<1, ANY> = "200";
    /// comma-separated outbox job kinds this node works (`order_expire`,
    /// `stock_restore`, `listing_release`, `payment_cancel`, `payment_refund`,
    /// `payment_reconcile`, `email_send`); lets an operator run the side effects on
    /// dedicated nodes. Unknown kinds are refused
    outbox_kinds: Option<OutboxKinds> = unset ("all");
    /// a room with new messages tells each member who has no live connection (on any
    /// node), has not muted it and is not blocked with the sender, at most once per
    /// this window: one `chat.message` notification per window, updated with the unread
    /// count and the latest message while unread
    notify_chat_debounce_secs: Secs<1, ANY> = "30";
    /// SMTP server for emails (payment receipts, cancellations, expired orders, admin
    /// alerts): `smtp://HOST:PORT` (plain, e.g. a local relay),
    /// `smtp://USER:PASS@HOST:587?tls=required` (STARTTLS),
    /// `smtps://USER:PASS@HOST:465`. Unset (the embedded default): each email is
    /// written to `data_dir/outbox-mail/notification-<id>.eml` (verification links:
    /// `verify-<user>-<ms>.eml`). Emails are sent from the outbox (`email_send` jobs),
    /// retried with backoff while the server is down, and never block a request
    smtp_url: Option<Scheme<SMTP>> = unset;
    /// the address users reach the service at (behind a proxy: the proxy's https URL);
    /// links in emails start with it
    public_url: Url = "http://127.0.0.1:8080";
    /// the From of every email
    mail_from: MailFrom = "장터 <no-reply@jangteo.local>";
    /// emails one address receives per UTC day at most, verification links included,
    /// counted in the database (so across nodes); the rest of the day's are dropped and
    /// logged (`daily email limit of this address reached`). Notification emails go
    /// only to verified addresses at all
    mail_daily_max_per_recipient: Num<u32, 1, 10_000> = "20";
    /// how long the emailed verification link works
    email_verify_hours: Hours<1, 720> = "48";
    /// verification emails a user may have sent again per hour (`POST
    /// /api/auth/verify-email/resend`); more get `429 rate_limited`
    email_verify_resend_max: Num<u32, 1, 100> = "3";
    /// a buyer may cancel (refund) paid order lines this long after payment; later `409
    /// cancel_refused` (`window_passed`). Admins cancel at any time (`POST
    /// /api/admin/orders/{number}/cancel`)
    cancel_window_hours: Hours<0, 8_760> = "24";
    /// timeout of one HTTP call to Toss or KakaoPay (a timeout is an unknown outcome:
    /// the confirm answers `503 unavailable` and may be repeated; cancels are retried
    /// by the outbox)
    payment_timeout_ms: Millis<1, 120_000> = "10000";
    /// first pause before a provider cancel (refund or compensation) that failed is
    /// tried again from the outbox; it doubles each time (2, 4, 8 ... min), at most an
    /// hour
    payment_retry_base_ms: Millis<1, 3_600_000> = "120000" ("2 min");
    /// attempts of a provider cancel before it is given up: the refund becomes
    /// `failed`, it shows in `GET /api/admin/payments/failures`, and
    /// `payment.cancel_failed` (or `payment.compensation_failed`) goes to the alarms
    /// topic
    payment_max_attempts: Num<i64, 1, 50> = "7";
    /// where KakaoPay sends the buyer back after its payment page; `provider`, `order`
    /// and `result` (`approve`, `cancel`, `fail`) are added to the query, and KakaoPay
    /// adds `pg_token` on approval. The server answers `/pay/return` with the web
    /// client, which confirms the payment and shows the order; set it to this server's
    /// public address
    payment_return_url: Url = "http://127.0.0.1:8080/pay/return";
    /// Toss Payments secret key (`test_sk_...` for the test mode, `live_sk_...`):
    /// enables the `toss` provider. Keep it out of the config file in production (use
    /// `JANGTEO_TOSS_SECRET_KEY`)
    toss_secret_key: Secret = unset;
    /// Toss API base; tests point it at a local fake
    toss_base_url: Url = "https://api.tosspayments.com";
    /// Toss Payments client key (`test_ck_...`, `live_ck_...`; public, it goes to
    /// browsers): with `toss_secret_key` set, the web client's checkout opens Toss's
    /// payment widget (`GET /api/payments/providers` hands it out, and the page's
    /// Content-Security-Policy admits the widget's origin)
    toss_client_key: Secret = unset;
    /// the widget script the web client loads; tests point it at a local fake
    toss_sdk_url: Url = "https://js.tosspayments.com/v2/standard";
    /// KakaoPay secret key (`DEV...` for tests, `PRD...`); with `kakaopay_cid` enables
    /// the `kakaopay` provider
    kakaopay_secret_key: Secret = unset;
    /// KakaoPay merchant id (`TC0ONETIME` in test mode)
    kakaopay_cid: Secret = unset;
    /// KakaoPay API base; tests point it at a local fake
    kakaopay_base_url: Url = "https://open-api.kakaopay.com";
    /// Kakao Login REST API key (the app's client id); set to enable sign-in with Kakao
    /// (see README, "Sign in with Kakao and Google")
    kakao_client_id: Secret = unset;
    /// Kakao Login client secret, if the app has one switched on
    kakao_client_secret: Secret = unset;
    /// the Redirect URI registered with Kakao
    kakao_redirect_url: Option<Url> = unset ("`<public_url>/api/auth/kakao/callback`");
    /// Kakao's authorization server (authorize and token); tests point it at a local
    /// fake
    kakao_auth_url: Url = "https://kauth.kakao.com";
    /// Kakao's API server (`/v2/user/me`)
    kakao_api_url: Url = "https://kapi.kakao.com";
    /// Google OAuth client id; with `google_client_secret`, enables sign-in with Google
    google_client_id: Secret = unset;
    /// Google OAuth client secret
    google_client_secret: Secret = unset;
    /// the authorized redirect URI registered with Google
    google_redirect_url: Option<Url> = unset ("`<public_url>/api/auth/google/callback`");
    /// Google's OpenID Connect issuer; endpoints and signing keys come from
    /// `<issuer>/.well-known/openid-configuration` (cached an hour; keys fetched again
    /// for an unknown `kid`)
    google_issuer: Url = "https://accounts.google.com";
    /// how long a sign-in may take between leaving for the provider and coming back
    oauth_flow_ttl_secs: Secs<1, 3_600> = "600";
    /// timeout of one call to Kakao or Google
    oauth_timeout_ms: Millis<1, 120_000> = "10000";
    /// how long after a shop order is paid its buyer is asked to review the products
    /// (`review.product_request`; not if the order was cancelled in full meanwhile).
    /// The reminder is an outbox job written with the payment
    review_request_delay_secs: Secs<1, 2_592_000> = "259200" ("3 days");
    /// a shop option with this many or fewer in stock shows as `low`; when an option's
    /// stock falls to it or below, a `stock.low` event goes to the alarms topic once
    /// (not again until it rises above)
    low_stock_threshold: Num<i64, 0, 1_000_000> = "3";
    /// how far ahead a timed reservation may end: an `until` later than now + this (or
    /// not in the future) is refused with `422 validation_failed` naming `until`.
    /// Every pending reservation holds a timer
    reservation_max_secs: Secs<1, 315_360_000> = "604800" ("7 days");
    /// with Kafka (several nodes): every node re-arms all pending reservation timers
    /// this often, so the timers of a node that died still fire (at most this late).
    /// Expiry is a conditional update: it happens once in the cluster however many
    /// nodes fire
    reservation_sweep_secs: Secs<1, ANY> = "30";
    /// how long a neighbourhood stays verified after the user proved a
    /// position inside it (`POST /api/me/neighbourhoods`); afterwards the user
    /// still browses it but verifies again to post there (`neighbourhood_expired`).
    /// Fractions allowed (tests use seconds)
    neighbourhood_verify_days: FractionalDays<0, 365> = "30";
    /// how long a room waits for a missing seq to arrive from Kafka before reading it
    /// from the message store
    cluster_gap_fill_ms: Millis<1, ANY> = "150";
    /// with Kafka: a room actor that starts on a node (first traffic of a room there,
    /// or again after `chat_room_idle_secs`) delivers to the room's members on that
    /// node the messages committed this recently, read from the store, because their
    /// Kafka events may still be on the way and would otherwise be taken for old ones.
    /// Capped at half of `chat_room_idle_secs` (an earlier actor of the same node
    /// cannot have delivered messages that recent, so nobody gets one twice); `0` turns
    /// it off. Clocks of the nodes are assumed to agree to well within this
    cluster_catchup_ms: Millis<0, ANY> = "10000";
    /// serve Prometheus metrics at `GET /metrics`; `false` answers 404 `not_found` as
    /// for an unknown route
    metrics_enabled: Flag = "true";
    /// when set, `GET /metrics` requires `Authorization: Bearer <metrics_token>`,
    /// else `401 unauthenticated`. Unset:
    /// `/metrics` is public, which suits the embedded default on a laptop; **production
    /// should set it** (or `metrics_enabled = false`), since metrics reveal routes,
    /// traffic and error rates
    metrics_token: Token = unset;
    /// largest image upload (10 MiB); files live under `data_dir/media`
    media_max_bytes: Num<usize, 1, MANY> = "10485760";
}
