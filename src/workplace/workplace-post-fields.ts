/**
 * The field names of a Workplace Graph API post and of the objects in it (author, place and its
 * location, attachments and their media, tags, privacy, targeting): the names a post can hold
 * that say nothing about anyone. The audit log names a dropped field by its path only where every
 * name on it is one of these (or the policy's), since a caller may send fields of any name: an
 * IBAN or a person's name as a key would otherwise be written to the append-only log in clear.
 */
export const WORKPLACE_POST_FIELD_NAMES: ReadonlySet<string> = new Set([
  // The post.
  'id', 'admin_creator', 'application', 'attachments', 'call_to_action', 'caption', 'child_attachments', 'comments',
  'coordinates', 'created_time', 'description', 'event', 'feed_targeting', 'formatting', 'from', 'full_picture',
  'icon', 'is_expired', 'is_hidden', 'is_popular', 'is_published', 'likes', 'link', 'message', 'message_tags', 'name',
  'object_id', 'parent_id', 'permalink_url', 'picture', 'place', 'poll', 'privacy', 'properties', 'reactions',
  'scheduled_publish_time', 'seen', 'shares', 'source', 'status_type', 'story', 'story_tags', 'target', 'targeting',
  'timeline_visibility', 'to', 'type', 'updated_time', 'via', 'with_tags', 'paging', 'summary',
  // People, places and tags.
  'email', 'location', 'city', 'country', 'latitude', 'longitude', 'state', 'street', 'zip', 'located_in',
  'offset', 'length', 'value', 'allow', 'deny', 'friends', 'count', 'total_count',
  // Attachments and their media.
  'data', 'media', 'image', 'src', 'height', 'width', 'url', 'unshimmed_url', 'title', 'media_type', 'subattachments',
  'description_tags', 'video', 'duration', 'options', 'text', 'href',
]);
