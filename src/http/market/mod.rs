//! The marketplace over REST: media, listings, feed, favourites, blocks,
//! reports, chats per listing, reservations, sales, reviews.

mod blocks;
mod chats;
mod deals;
mod favourites;
mod listings;
mod media;
mod neighbourhoods;
mod reports;

pub use blocks::*;
pub use chats::*;
pub use deals::*;
pub use favourites::*;
pub use listings::*;
pub use media::*;
pub use neighbourhoods::*;
pub use reports::*;

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Admin, Auth, MaybeAuth, OptionalJson, Verified};
use super::rooms::RoomView;
use crate::domain::ids::{ListingId, UserId};
use crate::domain::listing::{ListingStatus, Sort};
use crate::error::{Code, Refuse};
use crate::http::error::{ApiError, ErrorBody};
use crate::service::market::{media_url, FeedItem, FeedRequest, ListingDetail, ListingInput};
use crate::store::sql::MediaRecord;
use crate::AppState;
