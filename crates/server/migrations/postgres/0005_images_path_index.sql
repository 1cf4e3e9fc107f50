-- Every image of a folder by name, archived ones included: looking an image up by its path
-- (GET /images/{dataset}/{dir/…/filename}) reads this index instead of the whole dataset.
CREATE INDEX images_path ON images (dataset_id, folder, filename);
