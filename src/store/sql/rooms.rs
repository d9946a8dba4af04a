//! Rooms, members and bans.

use super::{inserted, is_unique_violation, last_insert_id, retrying};
use crate::domain::chat::{MemberRole, RoomKind};
use crate::domain::ids::UserId;
use crate::store::sql::ChatSql;
use crate::store::{MemberRecord, RoomRecord, StoreError};

const ROOM_COLUMNS: &str =
    "r.id, r.kind, r.name, r.description, r.capacity, r.passcode_hash, r.owner_id, \
     r.member_count, r.last_seq, r.last_activity_at, r.created_at, r.listing_id, r.min_manner_score, \
     r.region_code";
const MEMBER_COLUMNS: &str =
    "m.room_id, m.user_id, m.role, m.joined_at, m.visible_from, m.last_read_seq";

type RoomRow = (
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<f64>,
    Option<String>,
);
type MemberRow = (i64, i64, String, i64, i64, i64);

fn room(row: RoomRow) -> Result<RoomRecord, StoreError> {
    let (
        id,
        kind,
        name,
        description,
        capacity,
        passcode_hash,
        owner_id,
        member_count,
        last_seq,
        last_activity_at,
        created_at,
        listing_id,
        min_manner_score,
        region_code,
    ) = row;
    Ok(RoomRecord {
        id,
        kind: RoomKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("room {id}: bad kind {kind:?}")))?,
        name,
        description,
        capacity,
        passcode_hash,
        owner_id,
        member_count,
        last_seq,
        last_activity_at,
        created_at,
        listing_id,
        min_manner_score,
        region_code,
    })
}

fn member(row: MemberRow) -> Result<MemberRecord, StoreError> {
    let (room_id, user_id, role, joined_at, visible_from, last_read_seq) = row;
    Ok(MemberRecord {
        room_id,
        user_id,
        role: MemberRole::parse(&role)
            .ok_or_else(|| StoreError::Other(format!("member role {role:?}")))?,
        joined_at,
        visible_from,
        last_read_seq,
    })
}

/// Why a join did not add the member.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined { visible_from: i64 },
    AlreadyMember,
    Full,
    Banned,
    NoRoom,
}

/// One row of "my rooms".
#[derive(Debug, Clone)]
pub struct MyRoom {
    pub room: RoomRecord,
    pub member: MemberRecord,
    /// The other member of a direct room: (id, nickname, withdrawn).
    pub peer: Option<(i64, String, bool)>,
    /// The listing a direct room is about.
    pub listing: Option<ListingCard>,
}

/// What a chat list shows of the listing a room is about.
#[derive(Debug, Clone)]
pub struct ListingCard {
    pub id: i64,
    pub title: String,
    pub price: i64,
    pub status: String,
    pub thumb_key: Option<String>,
}

/// An open room as its owner creates it (fields already checked).
#[derive(Debug, Clone, Copy)]
pub struct NewOpenRoom<'a> {
    pub owner: UserId,
    pub name: &'a str,
    pub description: &'a str,
    pub capacity: i64,
    pub passcode_hash: Option<&'a str>,
    pub min_manner_score: Option<f64>,
    /// The region it belongs to (a neighbourhood room), if any.
    pub region: Option<&'a str>,
}

impl ChatSql<'_> {
    pub async fn create_open_room(
        &self,
        room: &NewOpenRoom<'_>,
        now: i64,
    ) -> Result<i64, StoreError> {
        retrying("create_open_room", || async {
        let owner = room.owner.get();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO rooms (kind, name, description, capacity, passcode_hash, owner_id, member_count, last_seq, \
             last_activity_at, created_at, min_manner_score, region_code) VALUES ('open', ?, ?, ?, ?, ?, 1, 0, ?, ?, ?, ?)",
        )
        .bind(room.name)
        .bind(room.description)
        .bind(room.capacity)
        .bind(room.passcode_hash)
        .bind(owner)
        .bind(now)
        .bind(now)
        .bind(room.min_manner_score)
        .bind(room.region)
        .execute(&mut *tx)
        .await?;
        let id = last_insert_id(&mut tx, self.dialect()).await?;
        sqlx::query(
            "INSERT INTO room_members (room_id, user_id, role, joined_at, visible_from, last_read_seq) \
             VALUES (?, ?, 'owner', ?, 0, 0)",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }).await
    }

    /// The one direct room for `key`, created with members `a` and `b` if
    /// missing. Two concurrent calls get the same room: the unique key makes
    /// the loser of the race re-read the winner's row.
    pub async fn get_or_create_direct(
        &self,
        key: &str,
        a: i64,
        b: i64,
        listing_id: Option<i64>,
        now: i64,
    ) -> Result<(i64, bool), StoreError> {
        retrying("get_or_create_direct", || async {
        if let Some(id) = self.direct_room_id(key).await? {
            return Ok((id, false));
        }
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO rooms (kind, name, description, capacity, direct_key, listing_id, member_count, last_seq, \
             last_activity_at, created_at) VALUES ('direct', '', '', 2, ?, ?, 2, 0, ?, ?)",
        )
        .bind(key)
        .bind(listing_id)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                let id = self
                    .direct_room_id(key)
                    .await?
                    .ok_or_else(|| StoreError::Other(format!("direct room {key} vanished")))?;
                return Ok((id, false));
            }
            other => {
                other?;
            }
        }
        let id = last_insert_id(&mut tx, self.dialect()).await?;
        for user in [a, b] {
            sqlx::query(
                "INSERT INTO room_members (room_id, user_id, role, joined_at, visible_from, last_read_seq) \
                 VALUES (?, ?, 'member', ?, 0, 0)",
            )
            .bind(id)
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(listing) = listing_id {
            sqlx::query("UPDATE listings SET chat_count = chat_count + 1 WHERE id = ?")
                .bind(listing)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((id, true))
    })
        .await
    }

    async fn direct_room_id(&self, key: &str) -> Result<Option<i64>, StoreError> {
        // Read on the writer: right after a lost race the reader may not see
        // the winner's commit yet.
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM rooms WHERE direct_key = ?")
            .bind(key)
            .fetch_optional(self.writer())
            .await?;
        Ok(row.map(|r| r.0))
    }

    pub async fn room(&self, id: i64) -> Result<Option<RoomRecord>, StoreError> {
        let row: Option<RoomRow> = sqlx::query_as(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = ?"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.map(room).transpose()
    }

    pub async fn members(&self, room_id: i64) -> Result<Vec<MemberRecord>, StoreError> {
        let rows: Vec<MemberRow> = sqlx::query_as(&format!(
            "SELECT {MEMBER_COLUMNS} FROM room_members m WHERE m.room_id = ?"
        ))
        .bind(room_id)
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(member).collect()
    }

    pub async fn member(
        &self,
        room_id: i64,
        user_id: i64,
    ) -> Result<Option<MemberRecord>, StoreError> {
        let row: Option<MemberRow> = sqlx::query_as(&format!(
            "SELECT {MEMBER_COLUMNS} FROM room_members m WHERE m.room_id = ? AND m.user_id = ?"
        ))
        .bind(room_id)
        .bind(user_id)
        .fetch_optional(self.reader())
        .await?;
        row.map(member).transpose()
    }

    /// Add a member if the room has space and the user is not banned.
    pub async fn join_room(
        &self,
        room_id: i64,
        user_id: i64,
        now: i64,
    ) -> Result<JoinOutcome, StoreError> {
        retrying("join_room", || async {
        let mut tx = self.begin_write().await?;
        if !self.lock_room(&mut tx, room_id).await? {
            return Ok(JoinOutcome::NoRoom);
        }
        let banned: Option<(i64,)> =
            sqlx::query_as("SELECT user_id FROM room_bans WHERE room_id = ? AND user_id = ?")
                .bind(room_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if banned.is_some() {
            return Ok(JoinOutcome::Banned);
        }
        let existing: Option<(i64,)> =
            sqlx::query_as("SELECT user_id FROM room_members WHERE room_id = ? AND user_id = ?")
                .bind(room_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if existing.is_some() {
            return Ok(JoinOutcome::AlreadyMember);
        }
        // Atomic capacity check: the row only changes while there is space.
        let updated = sqlx::query("UPDATE rooms SET member_count = member_count + 1 WHERE id = ? AND member_count < capacity")
            .bind(room_id)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM rooms WHERE id = ?")
                .bind(room_id)
                .fetch_optional(&mut *tx)
                .await?;
            return Ok(if exists.is_some() {
                JoinOutcome::Full
            } else {
                JoinOutcome::NoRoom
            });
        }
        let (last_seq,): (i64,) = sqlx::query_as("SELECT last_seq FROM rooms WHERE id = ?")
            .bind(room_id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO room_members (room_id, user_id, role, joined_at, visible_from, last_read_seq) \
             VALUES (?, ?, 'member', ?, ?, ?)",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(now)
        .bind(last_seq)
        .bind(last_seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(JoinOutcome::Joined {
            visible_from: last_seq,
        })
    }).await
    }

    /// Remove a member (leave or kick); false if they were not one.
    pub async fn remove_member(&self, room_id: i64, user_id: i64) -> Result<bool, StoreError> {
        retrying("remove_member", || async {
            let mut tx = self.begin_write().await?;
            if !self.lock_room(&mut tx, room_id).await? {
                return Ok(false);
            }
            let removed = sqlx::query("DELETE FROM room_members WHERE room_id = ? AND user_id = ?")
                .bind(room_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if removed.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("UPDATE rooms SET member_count = member_count - 1 WHERE id = ?")
                .bind(room_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    pub async fn ban(
        &self,
        room_id: i64,
        user_id: i64,
        by: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO room_bans (room_id, user_id, banned_by, banned_at) VALUES (?, ?, ?, ?)",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(by)
        .bind(now)
        .execute(self.writer())
        .await;
        inserted(result).map(|_| ())
    }

    /// Lift a ban; false if there was none.
    pub async fn unban(&self, room_id: i64, user_id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM room_bans WHERE room_id = ? AND user_id = ?")
            .bind(room_id)
            .bind(user_id)
            .execute(self.writer())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_owner(
        &self,
        room_id: i64,
        old_owner: i64,
        new_owner: i64,
    ) -> Result<(), StoreError> {
        retrying("set_owner", || async {
            let mut tx = self.begin_write().await?;
            self.lock_room(&mut tx, room_id).await?;
            sqlx::query(
                "UPDATE room_members SET role = 'member' WHERE room_id = ? AND user_id = ?",
            )
            .bind(room_id)
            .bind(old_owner)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE room_members SET role = 'owner' WHERE room_id = ? AND user_id = ?")
                .bind(room_id)
                .bind(new_owner)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE rooms SET owner_id = ? WHERE id = ?")
                .bind(new_owner)
                .bind(room_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Open rooms whose name contains `q` (any script; `%` and `_` in `q`
    /// are literal), newest first, ids below `before_id`.
    pub async fn search_open_rooms(
        &self,
        q: &str,
        regions: Option<&[String]>,
        before_id: i64,
        limit: i64,
    ) -> Result<Vec<RoomRecord>, StoreError> {
        let escaped: String = q
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '!' => vec!['!', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        let in_regions = match regions {
            None => String::new(),
            Some([]) => " AND 1 = 0".to_string(),
            Some(list) => format!(
                " AND r.region_code IN ({})",
                super::placeholders(list.len())
            ),
        };
        let sql = format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.kind = 'open' AND r.id < ? AND r.name LIKE ? ESCAPE '!'{in_regions} \
             ORDER BY r.id DESC LIMIT ?"
        );
        let mut query = sqlx::query_as::<_, RoomRow>(&sql)
            .bind(before_id)
            .bind(pattern);
        for code in regions.unwrap_or_default() {
            query = query.bind(code.as_str());
        }
        let rows: Vec<RoomRow> = query.bind(limit).fetch_all(self.reader()).await?;
        rows.into_iter().map(room).collect()
    }

    /// Every room of a user with their membership, latest activity first.
    pub async fn user_rooms(&self, user_id: i64) -> Result<Vec<MyRoom>, StoreError> {
        use sqlx::Row as _;
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS}, {MEMBER_COLUMNS}, pu.id, pu.nickname, pu.status, \
               l.id, l.title, l.price, l.status, \
               (SELECT md.thumb_key FROM listing_images li JOIN media md ON md.id = li.media_id \
                WHERE li.listing_id = l.id ORDER BY li.position LIMIT 1) \
             FROM room_members m JOIN rooms r ON r.id = m.room_id \
             LEFT JOIN users pu ON r.kind = 'direct' AND pu.id = \
               (SELECT pm.user_id FROM room_members pm WHERE pm.room_id = r.id AND pm.user_id <> m.user_id LIMIT 1) \
             LEFT JOIN listings l ON l.id = r.listing_id \
             WHERE m.user_id = ? ORDER BY r.last_activity_at DESC, r.id DESC"
        ))
        .bind(user_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                let r: RoomRow = (
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    row.try_get(4)?,
                    row.try_get(5)?,
                    row.try_get(6)?,
                    row.try_get(7)?,
                    row.try_get(8)?,
                    row.try_get(9)?,
                    row.try_get(10)?,
                    row.try_get(11)?,
                    row.try_get(12)?,
                    row.try_get(13)?,
                );
                let m: MemberRow = (
                    row.try_get(14)?,
                    row.try_get(15)?,
                    row.try_get(16)?,
                    row.try_get(17)?,
                    row.try_get(18)?,
                    row.try_get(19)?,
                );
                let peer_id: Option<i64> = row.try_get(20)?;
                let peer_nick: Option<String> = row.try_get(21)?;
                let peer_status: Option<String> = row.try_get(22)?;
                let listing_id: Option<i64> = row.try_get(23)?;
                let listing = match listing_id {
                    Some(id) => Some(ListingCard {
                        id,
                        title: row.try_get(24)?,
                        price: row.try_get(25)?,
                        status: row.try_get(26)?,
                        thumb_key: row.try_get(27)?,
                    }),
                    None => None,
                };
                let peer = match (peer_id, peer_nick) {
                    (Some(id), Some(nick)) => {
                        Some((id, nick, peer_status.as_deref() == Some("withdrawn")))
                    }
                    _ => None,
                };
                Ok(MyRoom {
                    room: room(r)?,
                    member: member(m)?,
                    peer,
                    listing,
                })
            })
            .collect()
    }

    /// Ids of the rooms a user belongs to, with kind and the direct peer.
    pub async fn user_room_ids(
        &self,
        user_id: i64,
    ) -> Result<Vec<(i64, RoomKind, i64, i64, Option<i64>)>, StoreError> {
        let rows: Vec<(i64, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT r.id, r.kind, r.last_seq, m.last_read_seq, \
               (SELECT pm.user_id FROM room_members pm WHERE r.kind = 'direct' AND pm.room_id = r.id \
                AND pm.user_id <> m.user_id LIMIT 1) \
             FROM room_members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ?",
        )
        .bind(user_id)
        .fetch_all(self.reader())
        .await?;
        rows.into_iter()
            .map(|(id, kind, last_seq, last_read, peer)| {
                let kind = RoomKind::parse(&kind)
                    .ok_or_else(|| StoreError::Other(format!("room {id}: bad kind")))?;
                Ok((id, kind, last_seq, last_read, peer))
            })
            .collect()
    }
}
